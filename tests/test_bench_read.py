"""tools/bench_read.py runs end to end at a tiny scale and reports every table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ooc import _platform

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_read.py"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.skipif(not (_platform.PROC_FS or _platform.resource), reason="peak RSS unknown here")
def test_bench_read_reports_every_table(tmp_path):
    pytest.importorskip("tensorflow")
    args = [sys.executable, str(TOOL), "--dir", str(tmp_path), "--scale", "0.004",
            "--sparse-cols", "2000", "--nnz", "20", "--repeats", "1", "--fit-epochs", "2",
            "--fit-rows", "2000", "--sparse-fit-rows", "400"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for title in ("1. batch reads", "1b. the ceiling", "2. Keras fit", "3. peak RSS",
                  "4. whole epochs"):
        assert title in run.stdout
    results = json.loads((tmp_path / "bench_read.json").read_text())
    assert 0 < results["kernel_copy"]["ratio"] < 10
    for kind in ("dense", "sparse"):
        for fmt in ("hdf5", "npy"):
            reads = results[f"reads_{kind}_{fmt}"]
            assert all(reads[way]["ratio"] > 0 for way in ("batches", "read_once", "copy"))
            fit = results[f"fit_{kind}_{fmt}"]
            assert all(len(t) == 2 for t in fit["epochs"].values())
            assert fit["ooc_s/mem_shuffle_s"] > 0 and fit["tf_data_s/mem_noshuffle_s"] > 0
            assert fit["premade_s/mem_shuffle_s"] > 0
            epochs = results[f"epochs_{kind}_{fmt}"]
            assert all(len(t) == 1 for t in epochs["epochs"].values())
            assert epochs["ooc/in-memory"] > 0 and epochs["plain/in-memory"] > 0
    assert results["rss_npy"]["8x"]["rows"] == 8 * results["rss_npy"]["1x"]["rows"]


def test_bench_read_epochs_alone(tmp_path):
    # the whole-epoch table needs no TensorFlow; the plain readers return the same batches
    args = [sys.executable, str(TOOL), "--dir", str(tmp_path), "--scale", "0.002",
            "--sparse-cols", "500", "--nnz", "10", "--repeats", "2", "--skip", "reads", "fit",
            "rss"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "4. whole epochs" in run.stdout and "1. batch reads" not in run.stdout
    results = json.loads((tmp_path / "bench_read_epochs.json").read_text())
    for kind in ("dense", "sparse"):
        for fmt in ("hdf5", "npy"):
            r = results[f"epochs_{kind}_{fmt}"]
            assert all(len(t) == 2 for t in r["epochs"].values())
            assert r["ooc/plain"] > 0 and r["ooc/in-memory_cpu"] > 0
    # no pool where a forked child could share it (OOC_PORTABLE=1 forces that)
    assert (results["epochs_sparse_npy"]["pool_reused"] > 0) == _platform.FORK_HOOK
