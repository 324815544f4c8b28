"""The project as a whole: the format specification matches what is written,
the test suite collects under the ``pytest`` console script, a licence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.sparse

import ooc
import ooc.format

REPO = Path(__file__).resolve().parents[1]
NAMED_BY_THE_USER = {"splits", "arrays", "extras", "config"}
"""Manifest objects whose keys are names of splits, arrays or settings, not of the format."""


def schema_keys(value: Any, under: str = "") -> set[str]:
    """Every key of the manifest's format (not the user's names) in ``value``."""
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if under in NAMED_BY_THE_USER:
                keys |= schema_keys(item)  # a split's or array's own fields
            else:
                keys.add(key)
                keys |= schema_keys(item, "" if key == "config" else key)
    elif isinstance(value, list):
        for item in value:
            keys |= schema_keys(item)
    return keys


def write_both_kinds(path: Path, fmt: str) -> Path:
    with ooc.create(path, fmt) as w:
        w.set_metadata(classes=["a", "b"], feature_names=[f"f{i}" for i in range(6)])
        w.append("train", np.ones((4, 6), np.float32), [0, 1, 0, 1])
        w.append("val", scipy.sparse.random(3, 6, density=0.5, format="csr", dtype=np.float32),
                 [1, 0, 1])
        w.put_array("vectorizer/idf", np.arange(6, dtype=np.float64))
    return path


def documented(name: str) -> bool:
    spec = ooc.format.__doc__ or ""
    return f'"{name}"' in spec or f"``{name}" in spec


def write_sharded(path: Path) -> Path:
    with ooc.create_sharded(path, "npy") as w:
        w.set_metadata(classes=["a", "b"], feature_names=[f"f{i}" for i in range(6)])
        with w.part("val", 0).create() as pw:
            pw.append("val", scipy.sparse.random(3, 6, density=0.5, format="csr",
                                                 dtype=np.float32), [1, 0, 1])
        w.put_array("vectorizer/idf", np.arange(6, dtype=np.float64))
    return path


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "sharded"])
def test_every_key_and_attribute_written_is_in_the_format_specification(tmp_path, fmt):
    if fmt == "sharded":  # its manifest, and a part's (its config says whose part it is)
        path = write_sharded(tmp_path / "s")
        manifest = json.loads((path / "ooc-shards.json").read_text())
        attributes = schema_keys(json.loads((path / "val/part-00000/ooc.json").read_text()))
    else:
        path = write_both_kinds(tmp_path / ("d.h5" if fmt == "hdf5" else "d"), fmt)
    if fmt == "npy":
        manifest = json.loads((path / "ooc.json").read_text())
        attributes: set[str] = set()
    elif fmt == "hdf5":
        with h5py.File(path, "r") as f:
            manifest = json.loads(f["ooc_manifest"][()])
            attributes = set(f.attrs)
            f.visititems(lambda _, obj: attributes.update(obj.attrs))
    missing = sorted(k for k in schema_keys(manifest) | attributes if not documented(k))
    assert not missing, f"written but not in ooc/format.py's docstring: {missing}"


def test_the_pytest_console_script_collects_every_test():
    pytest_script = Path(sys.executable).parent / "pytest"
    if not pytest_script.exists():
        pytest.skip("no pytest console script beside this Python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(pytest_script), "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0 and "collected" in last and "error" not in last, done.stdout[-2000:]


def test_the_project_has_a_licence():
    text = (REPO / "LICENSE").read_text()  # pyproject.toml says Apache-2.0
    assert "Apache License" in text and "Version 2.0, January 2004" in text
