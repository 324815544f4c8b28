"""``ooc preprocess --scheduler``: the jobs on a Dask cluster give the same dataset."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ooc.text.ngram_fit
from ooc.errors import OocError
from ooc.store._disk import save_npy
from ooc.text import cluster

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # each test starts a cluster of spawned processes


@pytest.fixture(autouse=True)
def _environ_kept():
    # a LocalCluster's nannies leave their workers' variables in os.environ (the
    # MALLOC_TRIM_THRESHOLD_ of a test's own cluster would reach later tests' subprocesses)
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(("vectorizer", "workers", "shard_rows"),
                         [("ngram", 1, None), ("ngram", 2, None), ("ngram", 3, None),
                          ("sequence", 2, None), ("ngram", 2, 1)])
def test_a_local_cluster_writes_the_dataset_of_the_local_pool(textkit, monkeypatch,
                                                               vectorizer, workers, shard_rows):
    corpus = textkit.corpus("c.csv", docs=1500, seed=45)
    # several vocabulary shards, so that every job of the n-gram passes runs
    monkeypatch.setattr(ooc.text.ngram_fit, "shard_features", lambda budget: 1000)
    options = {"vectorizer": vectorizer, "top_k": 800, "max_length": 40, "chunk_rows": 100}
    textkit.preprocess(corpus, out="pool.h5", workers=2, **options)
    environ = dict(os.environ)
    summary = textkit.preprocess(corpus, out="dask.h5", workers=workers, scheduler="local",
                                 shard_rows=shard_rows, **options)
    assert dict(os.environ) == environ  # the nannies' OMP_NUM_THREADS=1 etc. set back
    assert sum(summary.rows.values()) == 1500
    textkit.assert_same(textkit.load("pool.h5"), textkit.load("dask.h5"))
    assert not (textkit.tmp_path / "dask.h5.ooc-work").exists()


@pytest.mark.parametrize(("task", "shard_rows"), [("tokenize_chunk-", None),
                                                   ("write_part-", 1)])
def test_a_worker_killed_during_a_task_changes_nothing(textkit, task, shard_rows):
    # during the count pass, or while writing a part of a sharded dataset (written
    # again whole by the retried task)
    corpus = textkit.corpus("c.csv", docs=8000, seed=46)
    options = {"top_k": 800, "chunk_rows": 100}
    textkit.preprocess(corpus, out="pool.h5", workers=2, **options)
    options["shard_rows"] = shard_rows
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as client:
        pids = client.run(os.getpid)
        run = threading.Thread(target=textkit.preprocess, args=(corpus,),
                               kwargs={"out": "dask.h5", "workers": 2,
                                       "scheduler": lc.scheduler_address, **options})
        run.start()
        victim, deadline = None, time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            busy = client.processing()
            victim = next((w for w, keys in busy.items()
                           if any(str(k).startswith(task) for k in keys)), None)
            time.sleep(0.002)
        assert victim is not None, f"no {task} task was seen running"
        os.kill(pids[victim], signal.SIGKILL)
        run.join(120)
        assert not run.is_alive()
        assert victim not in client.run(os.getpid)  # that worker is gone (a new one took over)
    assert (textkit.tmp_path / "dask.h5").exists()
    textkit.assert_same(textkit.load("pool.h5"), textkit.load("dask.h5"))


def test_a_run_on_a_cluster_stopped_by_a_crash_resumes_to_the_same_dataset(textkit,
                                                                          monkeypatch):
    # the crash is in this process (the client): after a chunk's counts were spilled
    corpus = textkit.corpus("c.csv", docs=1200, seed=43)
    options = {"top_k": 800, "chunk_rows": 100, "workers": 2, "scheduler": "local"}
    module = ooc.text.tokenize_pass
    save_chunk, calls = module.save_chunk, []

    class Crash(BaseException):
        pass

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise Crash
        return save_chunk(*args, **kwargs)

    monkeypatch.setattr(module, "save_chunk", crashing)
    with pytest.raises(Crash):
        textkit.preprocess(corpus, out="resumed.h5", **options)
    monkeypatch.setattr(module, "save_chunk", save_chunk)
    assert textkit.preprocess(corpus, out="resumed.h5", resume=True, **options).resumed
    textkit.preprocess(corpus, out="straight.h5", top_k=800, chunk_rows=100, workers=1)
    textkit.assert_same(textkit.load("straight.h5"), textkit.load("resumed.h5"))


def test_an_unreachable_scheduler_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(OocError, match=r"--scheduler tcp://127\.0\.0\.1:9: cannot reach"):
        cluster.connect("tcp://127.0.0.1:9", 2, tmp_path)


def test_without_a_scheduler_dask_is_not_imported(textkit):
    corpus = textkit.corpus("c.csv", docs=300, seed=47)
    code = ("import sys, ooc.preprocess as p\n"
            f"p.preprocess_text({str(corpus)!r}, {str(textkit.tmp_path / 'o.h5')!r}, "
            "top_k=100, workers=2, progress=False)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_save_npy_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    save_npy(path, np.arange(3))

    def cut_short(f, arr):
        f.write(b"\x93NUMPY partial")
        raise OSError("the job's worker was lost")

    monkeypatch.setattr(np, "save", cut_short)
    with pytest.raises(OSError):
        save_npy(path, np.arange(10))
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary left


def test_spooled_results_are_unique_on_every_host(tmp_path):
    # results of large jobs go through files named by a random id, not by pid, so
    # workers on several hosts sharing the work directory never collide
    from ooc.text.jobs import spooling_job

    a = spooling_job(tmp_path, np.zeros, 1 << 18)
    b = spooling_job(tmp_path, np.zeros, 1 << 18)
    assert a.path != b.path and a.path.parent == b.path.parent == Path(tmp_path)
