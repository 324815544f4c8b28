"""The command line: info, verify, errors as one line, python -m, light imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import scipy.sparse

import ooc
from ooc.cli import main
from tests.test_store_hdf5 import flip_byte


def small_dataset(path, fmt="hdf5"):
    with ooc.create(path, fmt) as w:
        w.set_metadata(classes=["neg", "pos"], config={"vectorizer": "ngram"})
        w.append("train", np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20) % 2)
        w.append("val", scipy.sparse.eye(5, 2, format="csr", dtype=np.float32), [1] * 5)
    return path


def test_info_describes_splits_classes_and_config(tmp_path, capsys):
    path = small_dataset(tmp_path / "d.h5")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "train: 20 rows x 2 features, dense, float32" in out
    assert "val: 5 rows x 2 features, sparse csr" in out
    assert "neg=10, pos=10" in out and "vectorizer ngram" in out


def test_verify_passes_then_fails_after_damage(tmp_path, capsys):
    path = small_dataset(tmp_path / "d", "npy")
    assert main(["verify", str(path)]) == 0
    flip_byte(path / "train" / "x.npy", 200)
    assert main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checksum mismatch" in err and "'train'" in err


def test_missing_dataset_is_one_clear_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.h5")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ooc info: error:") and "no such dataset" in err


def test_python_dash_m_and_light_import(tmp_path):
    path = small_dataset(tmp_path / "d.h5")
    code = ("import sys, ooc; ds = ooc.open(sys.argv[1]); ds.train.x[0:5]; "
            "list(ds.val.iter_batches(2)); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
    res = subprocess.run([sys.executable, "-m", "ooc", "info", str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "train: 20 rows" in res.stdout
