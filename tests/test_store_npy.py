"""NumPy backend: the shared suite plus .npy-only behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc._buffers import empty_for_read
from ooc.format import NPY_HEADER_BYTES
from tests.store_suite import StoreSuite, sparse_rows
from tests.test_store_hdf5 import flip_byte


class TestNpyStore(StoreSuite):
    format = "npy"

    def set_format_version(self, path: Path, version: int) -> None:
        manifest = json.loads((path / "ooc.json").read_text())
        manifest["format_version"] = version
        (path / "ooc.json").write_text(json.dumps(manifest))

    def flip_byte_in_x(self, path: Path, row: int, n_cols: int) -> None:
        flip_byte(path / "train" / "x.npy", NPY_HEADER_BYTES + row * n_cols * 4 + 1)

    def x_file(self, path: Path) -> Path:
        return path / "train" / "x.npy"


def test_a_truncated_file_is_named_at_open_and_when_viewed(tmp_path):
    path = tmp_path / "d"
    with ooc.create(path, "npy") as w:
        w.append("train", np.ones((1000, 8), np.float32), np.zeros(1000, int))
    x_file = path / "train" / "x.npy"
    split = ooc.open(path, verify="never").train  # held open: truncated after open
    os.truncate(x_file, x_file.stat().st_size - 100)
    np.testing.assert_array_equal(split.x.view(0, 900), np.ones((900, 8)))
    with pytest.raises(ooc.ChecksumError, match=rf"{x_file}: file ends .* truncated"):
        list(split.iter_batches(128))
    with pytest.raises(ooc.DamagedDatasetError, match=rf"{x_file}: expected .* 32128 bytes"):
        ooc.open(path, verify="never")


def test_every_array_opens_with_plain_numpy_memmap(tmp_path):
    path = tmp_path / "d"
    dense = np.arange(600, dtype=np.int32).reshape(200, 3)
    sparse = sparse_rows(40, 10, seed=5)
    with ooc.create(path, "npy") as w:
        w.append("train", dense[:150], np.zeros(150, int))
        w.append("train", dense[150:], np.ones(50, int))
        w.append("val", sparse, np.zeros(40, int))
    x = np.load(path / "train" / "x.npy", mmap_mode="r")
    assert x.shape == (200, 3) and x.dtype == np.int32
    np.testing.assert_array_equal(x, dense)
    np.testing.assert_array_equal(np.load(path / "train" / "y.npy", mmap_mode="r")[148:152],
                                  [0, 0, 1, 1])
    val = {k: np.load(path / "val" / "x" / f"{k}.npy", mmap_mode="r")
           for k in ("data", "indices", "indptr")}
    assert val["indices"].dtype == np.int32 and val["indptr"].dtype == np.int64
    np.testing.assert_array_equal(val["indptr"], sparse.indptr)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "d"
    with ooc.create(path, "npy") as w:
        w.append("train", np.ones((1000, 8), np.float64), np.zeros(1000, int))
    ds = ooc.open(path)
    with open(path / "train" / "x.npy", "r+b") as f:
        f.truncate(NPY_HEADER_BYTES + 500 * 64)
    with pytest.raises(ooc.ChecksumError, match="truncated"):
        ds.train.x[900:1000]


def test_read_buffers_avoid_the_slow_copy_window():
    # The kernel's page-cache copy is 4-5x slower when the destination sits
    # 1-63 bytes past the source modulo 4 KiB; no buffer may land there.
    for offset in range(0, 8192, 8):
        for dtype, shape in ((np.dtype(np.int32), (40, 128)), (np.dtype(np.float64), (4096,))):
            buf = empty_for_read(shape, dtype, offset)
            assert buf.shape == shape and buf.dtype == dtype
            assert buf.flags.c_contiguous and buf.flags.aligned and buf.flags.writeable
            address = buf.__array_interface__["data"][0]
            assert address % 64 == 0  # TensorFlow wraps it without a copy
            assert not 0 < (address - offset) % 4096 < 64, (offset, address % 4096)
