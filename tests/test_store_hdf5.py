"""HDF5 backend: the shared suite plus HDF5-only behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse

import ooc
from ooc import _platform
from tests.store_suite import StoreSuite, sparse_rows


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


class TestHdf5Store(StoreSuite):
    format = "hdf5"

    def set_format_version(self, path: Path, version: int) -> None:
        with h5py.File(path, "r+") as f:
            f.attrs["ooc_format_version"] = version

    def x_file(self, path: Path) -> Path:
        return path

    def direct_reads(self) -> bool:
        return _platform.chunk_iter() or _platform.chunk_info()

    def flip_byte_in_x(self, path: Path, row: int, n_cols: int) -> None:
        with h5py.File(path, "r") as f:
            ds = f["train/x"]
            chunk_start = row - row % ds.chunks[0]
            info = ds.id.get_chunk_info_by_coord((chunk_start, 0))
            offset = info.byte_offset + (row - chunk_start) * n_cols * ds.dtype.itemsize
        flip_byte(path, offset)


@pytest.mark.parametrize("compression", ["gzip", "lzf", "zstd", "blosc"])
def test_compressed_round_trip_and_damage(tmp_path, compression):
    x = np.tile(np.arange(64, dtype=np.float32), (5000, 1))
    path = tmp_path / "c.h5"
    with ooc.create(path, compression=compression) as w:
        w.append("train", x, np.zeros(5000, int))
    with h5py.File(path) as f:
        assert f["train/x"].fletcher32 and f["train/x"].id.get_create_plist().get_nfilters() >= 2
        chunk = f["train/x"].id.get_chunk_info(0)
    np.testing.assert_array_equal(ooc.open(path).train.x[100:4000], x[100:4000])
    flip_byte(path, chunk.byte_offset + chunk.size // 2)
    with pytest.raises(ooc.ChecksumError, match="'train'.*'x'.*rows 0:"):
        ooc.open(path).train.x[0:10]


def test_unknown_compression_is_refused(tmp_path):
    with pytest.raises(ValueError, match="compression must be one of"):
        ooc.create(tmp_path / "c.h5", compression="rar")


def test_layout_is_self_describing(tmp_path):
    path = tmp_path / "d.h5"
    x = sparse_rows(50, 20, seed=2)
    with ooc.create(path) as w:
        w.append("train", x, np.zeros(50, int))
        w.append("val", np.zeros((3, 4), np.int32), [0, 0, 0])
    with h5py.File(path) as f:
        # fixed-length strings only: HDF5's global heap (variable-length) has no checksum
        assert f.attrs["ooc_format"] == b"ooc" and f.attrs["ooc_format_version"] == 1
        assert json.loads(f["ooc_manifest"][()])["format"] == "ooc"
        assert h5py.check_string_dtype(f["ooc_manifest"].dtype).length is not None
        group = f["train/x"]
        assert group.attrs["encoding"] == b"csr" and tuple(group.attrs["shape"]) == (50, 20)
        rebuilt = scipy.sparse.csr_matrix(
            (group["data"][:], group["indices"][:], group["indptr"][:]), shape=(50, 20))
        np.testing.assert_array_equal(rebuilt.toarray(), x.toarray())
        assert f["val/x"].shape == (3, 4) and f["val/x"].fletcher32
        assert b'"format":' in f["ooc_manifest"][()] or '"format":' in f["ooc_manifest"][()]


def test_files_with_variable_length_strings_still_open(tmp_path):
    # earlier builds of format 1 wrote attributes and manifest as variable-length strings
    path = tmp_path / "d.h5"
    with ooc.create(path) as w:
        w.append("train", np.arange(12, dtype=np.int32).reshape(6, 2), np.zeros(6, int))
    with h5py.File(path, "r+") as f:
        text = f["ooc_manifest"][()].decode()
        del f["ooc_manifest"]
        f.create_dataset("ooc_manifest", data=text, dtype=h5py.string_dtype())
        f.attrs["ooc_format"] = "ooc"
        assert h5py.check_string_dtype(f["ooc_manifest"].dtype).length is None
    np.testing.assert_array_equal(ooc.open(path).train.x[:], np.arange(12).reshape(6, 2))


def test_compressed_reads_of_a_replaced_path_in_forked_workers(tmp_path):
    # Compressed chunks are read by h5py; with the path replaced it reads the
    # opened file through its descriptor, each forked worker at its own offset.
    import pickle

    path, x = tmp_path / "d.h5", np.arange(40_000, dtype=np.float64).reshape(-1, 4)
    with ooc.create(path, compression="gzip") as w:
        w.append("train", x, np.zeros(len(x), int))
    with ooc.open(path, verify="always") as ds:
        state = pickle.dumps(ds.train)
        path.rename(tmp_path / "moved.h5")
        with ooc.create(path, compression="gzip") as w:
            w.append("train", -x, np.zeros(len(x), int))
        children = []
        for seed in range(2):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child exits without returning
                ok = False
                try:
                    rng = np.random.default_rng(seed)
                    for start in rng.integers(0, len(x) - 500, 300):
                        np.testing.assert_array_equal(ds.train.x[start:start + 500],
                                                      x[start:start + 500])
                    ok = True
                finally:
                    os._exit(0 if ok else 1)
            children.append(pid)
        assert [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children] == [0, 0]
        with pytest.raises(ooc.DatasetChangedError):
            pickle.loads(state).x[:10]


def test_a_small_split_takes_chunks_its_size(tmp_path):
    # 1 MiB chunks made a 400-row dataset 16 MiB, 3x the npy backend's files
    sizes = {}
    for fmt, name in (("hdf5", "d.h5"), ("npy", "d")):
        path = tmp_path / name
        with ooc.create(path, fmt) as w:
            for split in ("train", "val"):
                for _ in range(4):
                    w.append(split, sparse_rows(100, 2000, seed=3), np.zeros(100, int))
            w.put_array("vectorizer/idf", np.ones(2000))
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        sizes[fmt] = sum(p.stat().st_size for p in files)
    assert sizes["hdf5"] < 1.5 * sizes["npy"], sizes
    with ooc.open(tmp_path / "d.h5") as ds:
        assert ds.train.x[:].shape == (400, 2000)
