"""Datasets at URLs: uploaded manifest last, read through a local cache, against a real
S3 API on localhost (moto's server, started here)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc import _platform
from ooc.cli import main
from ooc.format import MANIFEST_FILENAME, SHARDS_MANIFEST, WRITING_MARKER
from ooc.store.remote import upload
from tests.test_store_sharded import _write_part, small_sharded

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch, tmp_path):
    """A fresh bucket; credentials and endpoint as a user would set them."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                        "OOC_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"b{os.urandom(6).hex()}"
    fs.mkdir(bucket)
    return fs, bucket


def cached_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def local_dataset(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / ("local.h5" if fmt == "hdf5" else "local")
    x = np.arange(300, dtype=np.float32).reshape(100, 3)
    with ooc.create(path, fmt) as w:
        w.set_metadata(classes=["a", "b"])
        w.append("train", x, np.arange(100) % 2)
        w.put_array("tag", np.array([7]))
    return path


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_dataset_uploaded_reads_back_the_same(s3, tmp_path, fmt):
    _, bucket = s3
    local = local_dataset(tmp_path, fmt)
    upload(local, f"s3://{bucket}/ds")
    with ooc.open(f"s3://{bucket}/ds") as ds, ooc.open(local) as ref:
        np.testing.assert_array_equal(ds.train.x[:], ref.train.x[:])
        np.testing.assert_array_equal(ds.train.y[10:20], ref.train.y[10:20])
        assert ds.classes == ["a", "b"] and ds.extra("tag").tolist() == [7]
        assert str(ds.path) == f"s3://{bucket}/ds"
        ds.verify()
    assert cached_files(tmp_path)  # read from the cache


def test_a_sharded_dataset_fetches_only_the_parts_it_reads(s3, tmp_path):
    _, bucket = s3
    upload(small_sharded(tmp_path / "local", n_parts=4), f"s3://{bucket}/ds")
    with ooc.open(f"s3://{bucket}/ds") as ds:
        np.testing.assert_array_equal(ds.train.x[12:18].ravel(),
                                      np.arange(24, 36, dtype=np.float32))
        assert [n for n in cached_files(tmp_path) if n.startswith("part")] == ["part-00001.h5"]
        assert len(ds.train.x[:]) == 40 and ds.extra("tag").tolist() == [0]
        assert len([n for n in cached_files(tmp_path) if n.startswith("part")]) == 4


def test_a_dataset_replaced_at_its_url_is_fetched_anew(s3, tmp_path):
    _, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "v1", v=1), url)
    first = ooc.open(url)
    assert first.extra("tag").tolist() == [1]
    upload(small_sharded(tmp_path / "v2", v=2, n_parts=2), url, overwrite=True)
    with ooc.open(url) as second:
        assert second.extra("tag").tolist() == [2] and len(second.train) == 20
    # a part the first reader had not fetched yet is now the second's: refused, not mixed
    with pytest.raises(ooc.DatasetChangedError, match="replaced after it was opened"):
        first.train.x[0:1]
    first.close()
    with ooc.open(url) as again:
        assert again.train.x[0:1].tolist() == [[2000.0, 2001.0]]


def test_damage_in_the_bucket_is_found_when_read(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "local", "npy"), url)
    key = f"{bucket}/ds/train/part-00001/train/x.npy"
    data = bytearray(fs.cat_file(key))
    data[-5] ^= 0xFF
    fs.pipe(key, bytes(data))
    with ooc.open(url) as ds:
        ds.train.x[0:10]  # another part
        with pytest.raises(ooc.ChecksumError):
            ds.train.x[10:20]


def test_an_upload_without_its_manifest_is_not_a_dataset(s3, tmp_path):
    fs, bucket = s3
    local = small_sharded(tmp_path / "local")
    for path in sorted(local.rglob("*.h5")):  # the parts, as an upload stopped before the end
        fs.put_file(str(path), f"{bucket}/ds/{path.relative_to(local).as_posix()}")
    with pytest.raises(ooc.DatasetNotFoundError, match="no ooc dataset"):
        ooc.open(f"s3://{bucket}/ds")


def test_uploads_replace_only_ooc_datasets(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "v1", v=1), url)
    with pytest.raises(ooc.DatasetExistsError):
        upload(small_sharded(tmp_path / "v2", v=2), url)
    fs.pipe(f"{bucket}/ds/notes.txt", b"mine")
    with pytest.raises(ooc.OutputConflictError):
        upload(small_sharded(tmp_path / "v3", v=3), url, overwrite=True)
    assert fs.cat_file(f"{bucket}/ds/notes.txt") == b"mine"
    fs.pipe(f"{bucket}/mine.h5", b"not hdf5")
    with pytest.raises(ooc.OutputConflictError):
        upload(local_dataset(tmp_path, "hdf5"), f"s3://{bucket}/mine.h5", overwrite=True)
    assert fs.cat_file(f"{bucket}/mine.h5") == b"not hdf5"


@pytest.mark.parametrize("sharded", [True, False])
def test_preprocess_writes_to_a_url(s3, textkit, tmp_path, capsys, monkeypatch, sharded):
    # sharded: each part uploaded by its worker, the work directory in --work-dir;
    # else one file written in the local cache and uploaded
    import ooc.preprocess as pre
    from ooc.store import remote

    fs, bucket = s3
    corpus = textkit.corpus("c.csv", docs=600, seed=49)
    args = [str(corpus), "--top-k", "300", "--workers", "2", "--quiet", "--no-shuffle",
            "--chunk-rows", "50", *(["--shard-rows", "100"] if sharded else [])]
    assert main(["preprocess", *args, "--out", str(tmp_path / "local")]) == 0
    used, work_dir = [], pre.WorkDir
    monkeypatch.setattr(pre, "WorkDir", lambda *a: used.append(a[0]) or work_dir(*a))
    work = ["--work-dir", str(tmp_path / "shared")] if sharded else []
    if sharded:  # no copy of the whole dataset is uploaded from here
        monkeypatch.setattr(remote, "upload", lambda *a, **k: pytest.fail("staged"))
    assert main(["preprocess", *args, "--out", f"s3://{bucket}/ds", *work]) == 0
    assert f"wrote s3://{bucket}/ds" in capsys.readouterr().out
    assert used == [tmp_path / "shared" / "ds"] if sharded else len(used) == 1
    if sharded:
        manifest = json.loads(fs.cat_file(f"{bucket}/ds/{SHARDS_MANIFEST}"))
        assert len(manifest["splits"]["train"]["parts"]) >= 4
    else:
        assert fs.isfile(f"{bucket}/ds")
    assert not staged_files(tmp_path)  # no staging copy or part is left
    textkit.assert_same(textkit.load(tmp_path / "local"), load_url(f"s3://{bucket}/ds"))
    assert main(["info", f"s3://{bucket}/ds"]) == 0


def load_url(url: str):
    from tests.conftest import Loaded, SplitData

    with ooc.open(url, verify="always") as ds:
        splits = {name: SplitData(s.x[:], np.asarray(s.y[:]), np.asarray(s.row_ids[:]))
                  for name, s in ds.splits.items()}
        return Loaded(ds.classes, ds.feature_names, splits, ds.vectorizer)


def staged_files(tmp_path: Path) -> list[Path]:
    """What writers left in the local cache (parts before upload, the meta part)."""
    return [p for d in ("parts", "staging") for p in (tmp_path / "cache" / d).rglob("*")
            if p.is_file()]


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_sharded_dataset_written_straight_to_a_url(s3, tmp_path, fmt):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    small_sharded(url, fmt, v=4, n_parts=3)
    assert not fs.exists(f"{bucket}/ds/{WRITING_MARKER}") and not staged_files(tmp_path)
    with ooc.open(url, verify="always") as ds, \
            ooc.open(small_sharded(tmp_path / "local", fmt, v=4, n_parts=3)) as ref:
        np.testing.assert_array_equal(ds.train.x[:], ref.train.x[:])
        np.testing.assert_array_equal(ds.train.row_ids[:], ref.train.row_ids[:])
        assert ds.extra("tag").tolist() == [4] and ds.classes == ["a"]
        parts = [{**p, "manifest": None} for p in ds.manifest["splits"]["train"]["parts"]]
        assert parts == [{**p, "manifest": None}  # each write's id is in its parts
                         for p in ref.manifest["splits"]["train"]["parts"]]


def test_parts_uploaded_by_other_processes(s3, tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    _, bucket = s3
    url = f"s3://{bucket}/ds"
    with ooc.create_sharded(url, "hdf5") as w:
        w.set_metadata(classes=["even", "odd"])
        with ProcessPoolExecutor(2) as pool:
            pids = list(pool.map(_write_part, [w.part("train", i) for i in range(6)]))
    assert os.getpid() not in pids and not staged_files(tmp_path)
    with ooc.open(url) as ds:
        np.testing.assert_array_equal(ds.train.x[:].ravel(), np.arange(60))
        assert ds.train.label_counts.tolist() == [30, 30]


def test_an_unfinished_write_is_refused_then_replaced(s3, tmp_path):
    _, bucket = s3
    url = f"s3://{bucket}/ds"
    first = ooc.create_sharded(url, "npy")
    for k in range(2):
        _write_part(first.part("train", k))
    with pytest.raises(ooc.IncompleteDatasetError, match="has not finished"):
        ooc.open(url)
    small_sharded(url, "npy", v=5)  # the next write replaces it, without --overwrite
    with pytest.raises(ooc.ChunkError, match="not part 0 of split 'train' of this write"):
        first.commit()  # the first write finds the second's parts: it stops, touching nothing
    with ooc.open(url) as ds:
        assert ds.extra("tag").tolist() == [5] and len(ds.train) == 30


def test_a_part_uploaded_again_or_cut_short(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    w = ooc.create_sharded(url, "npy")
    for k in (0, 1, 1):  # part 1 twice, as a retried task
        _write_part(w.part("train", k))
    key = f"{bucket}/ds/train/part-00001/{MANIFEST_FILENAME}"
    assert fs.exists(key)
    w.commit()
    with ooc.open(url) as ds:
        np.testing.assert_array_equal(ds.train.x[:].ravel(), np.arange(20))

    w = ooc.create_sharded(url, "npy", overwrite=True)
    for k in (0, 1):
        _write_part(w.part("train", k))
    fs.rm_file(f"{bucket}/ds/train/part-00001/{MANIFEST_FILENAME}")  # an upload cut short
    with pytest.raises(ooc.ChunkError, match="part-00001: this part was not uploaded whole"):
        w.commit()
    assert not fs.exists(f"{bucket}/ds")  # the failed write took what it uploaded


def test_a_sharded_write_to_a_url_replaces_only_ooc_datasets(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    small_sharded(url, v=1)
    with pytest.raises(ooc.DatasetExistsError):
        ooc.create_sharded(url)
    w = ooc.create_sharded(url, overwrite=True)
    w.abort()  # the old dataset was replaced when the write started
    assert not fs.exists(f"{bucket}/ds")
    fs.pipe(f"{bucket}/ds/notes.txt", b"mine")
    with pytest.raises(ooc.OutputConflictError, match="not an ooc dataset"):
        ooc.create_sharded(url, overwrite=True)
    assert fs.cat_file(f"{bucket}/ds/notes.txt") == b"mine"


@pytest.mark.slow
def test_a_dask_cluster_writes_its_parts_to_a_url(s3, textkit, tmp_path):
    # the README's command: tasks upload their parts; the work directory in --work-dir
    pytest.importorskip("distributed")
    _, bucket = s3
    corpus = textkit.corpus("c.csv", docs=1500, seed=45)
    options = {"top_k": 800, "chunk_rows": 100, "shard_rows": 300}
    textkit.preprocess(corpus, out="pool", workers=2, **options)
    environ = dict(os.environ)
    try:
        summary = textkit.preprocess(corpus, out=f"s3://{bucket}/ds", workers=2,
                                     scheduler="local", work_dir=str(tmp_path / "shared"),
                                     **options)
    finally:  # a LocalCluster's nannies leave their workers' variables in os.environ
        os.environ.clear()
        os.environ.update(environ)
    assert summary.parts >= 2 and not staged_files(tmp_path)
    textkit.assert_same(textkit.load("pool"), load_url(f"s3://{bucket}/ds"))


def test_a_store_that_refuses_is_an_error_that_says_so(s3, textkit, monkeypatch, capsys):
    _, bucket = s3
    url = f"s3://{bucket}/ds"
    small_sharded(url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance credentials
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(ooc.StorageError, match="Check the credentials"):
            ooc.open(url)
        corpus = textkit.corpus("c.csv", docs=100, seed=50)
        assert main(["preprocess", str(corpus), "--out", f"s3://{bucket}/new", "--quiet"]) != 0
        err = capsys.readouterr().err
        assert "object store failed" in err and "Traceback" not in err
    finally:  # fsspec keeps the instances it made, here without credentials
        s3fs.S3FileSystem.clear_instance_cache()


def test_the_cache_is_cleared_under_an_open_reader(s3, tmp_path, capsys):
    # ooc cache --clear deletes fetched datasets only: a reader fetches again what it
    # reads next; a write's staging copy and anything ooc did not name stay
    _, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "local", n_parts=4), url)
    cache = tmp_path / "cache"
    (cache / "staging").mkdir(parents=True)
    (cache / "staging" / "keep").write_text("a write in progress")
    (cache / "notes").mkdir()
    (cache / "notes" / "mine.txt").write_text("not ooc's")
    with ooc.open(url) as ds:
        first = ds.train.x[0:10]
        assert main(["cache"]) == 0
        assert "from 1 URLs" in capsys.readouterr().out
        assert main(["cache", "--clear"]) == 0
        assert "removed" in capsys.readouterr().out
        assert not [n for n in cached_files(tmp_path) if n.startswith("part")]
        np.testing.assert_array_equal(ds.train.x[0:40][:10], first)  # fetched again
    assert (cache / "staging" / "keep").exists() and (cache / "notes" / "mine.txt").exists()


def test_a_flipped_byte_in_the_remote_manifest_is_refused(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    small_sharded(url)
    key = f"{bucket}/ds/{SHARDS_MANIFEST}"
    text = bytearray(fs.cat_file(key))
    text[text.index(b'"n_rows": ') + 10] ^= 0x01  # one digit of a row count
    fs.pipe(key, bytes(text))
    with pytest.raises(ooc.DamagedDatasetError):
        ooc.open(url)


@pytest.mark.slow
def test_a_run_killed_while_uploading_parts_is_refused_then_replaced(s3, textkit, tmp_path):
    # SIGKILL of the whole run (main process and workers) once its first parts are in the
    # bucket: the dataset does not open, and the same command with --resume writes all of it
    import signal
    import subprocess
    import sys
    import time

    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    corpus = textkit.corpus("c.csv", docs=20_000, seed=3)
    args = [str(corpus), "--top-k", "300", "--workers", "2", "--quiet", "--chunk-rows",
            "500", "--shard-rows", "500"]
    command = [sys.executable, "-m", "ooc", "preprocess", *args, "--out", url]
    run = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:
        found = fs.find(f"{bucket}/ds") if fs.exists(f"{bucket}/ds") else []
        if sum("/part-" in f for f in found) >= 2:
            break
        fs.invalidate_cache()
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be killed"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/ds/{SHARDS_MANIFEST}")
    with pytest.raises(ooc.IncompleteDatasetError, match="has not finished"):
        ooc.open(url)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "Pass --resume to continue it" in again.stderr
    again = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert main(["preprocess", *args, "--out", str(tmp_path / "local")]) == 0
    textkit.assert_same(textkit.load(tmp_path / "local"), load_url(url))
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/ds/{WRITING_MARKER}")
    if _platform.PROCESS_PROBE:  # else a dead writer's temporary is left to the user
        assert not staged_files(tmp_path)  # nor the killed run's parts or work directory


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_no_space_while_staging_a_part_for_a_url(s3, tmp_path, fmt):
    # the local disk runs out while the second part is written before its upload: one
    # clear error, nothing at the URL opens, and what the write uploaded is removed
    import resource
    import signal
    import subprocess
    import sys
    import textwrap

    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    script = textwrap.dedent(f"""
        import numpy as np, ooc
        try:
            with ooc.create_sharded({url!r}, {fmt!r}) as w:
                w.set_metadata(classes=["a"])
                for k, rows in enumerate((1000, 20_000)):
                    with w.part("train", k).create() as pw:
                        pw.append("train", np.ones((rows, 20), np.float32), np.zeros(rows, int))
        except ooc.NoSpaceError as exc:
            print(exc)
    """)
    limit = 1 << 20  # the first part fits, the second does not
    res = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=120, preexec_fn=lambda: (
                             signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
                             resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stdout.startswith("no space left on device while writing "), res.stdout
    assert "/parts/" in res.stdout and "free space and write again" in res.stdout
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/ds")  # the first part's upload removed, no marker
    with pytest.raises(ooc.DatasetNotFoundError):
        ooc.open(url)
    assert not staged_files(tmp_path)
