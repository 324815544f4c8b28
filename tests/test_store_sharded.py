"""Sharded datasets (format version 2): the shared store suite over datasets whose
every split is cut into parts, plus what only the sharded layout has."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc import _platform
from ooc.format import SHARDS_MANIFEST
from ooc.store import _file
from tests.store_suite import StoreSuite, mapped_resident_bytes
from tests.test_store_hdf5 import TestHdf5Store
from tests.test_store_npy import TestNpyStore


def cuts(n: int) -> list[int]:
    """Where a chunk of ``n`` rows is cut into parts: thirds, so that reads and batches
    span parts, and empty parts where ``n`` is small; large ones at multiples of 1024
    rows, so that aligned batches lie within HDF5 chunks as in one file."""
    align = 1024 if n >= 3072 else 1
    return [0, n // 3 // align * align, 2 * n // 3 // align * align, n]


def write_sharded(path: Path, fmt: str, splits: dict[str, list[tuple]], **meta) -> Path:
    """Each chunk of every split in three parts (see :func:`cuts`)."""
    with ooc.create_sharded(path, fmt) as w:
        for split, chunks in splits.items():
            index = 0
            for chunk in chunks:
                x, y, *ids = chunk
                n = x.shape[0]
                for a, b in zip(cuts(n)[:-1], cuts(n)[1:], strict=True):
                    target = pickle.loads(pickle.dumps(w.part(split, index)))
                    with target.create() as pw:
                        pw.append(split, x[a:b], np.asarray(y)[a:b],
                                  *(np.asarray(i)[a:b] for i in ids))
                    index += 1
        if meta:
            w.set_metadata(**meta)
    return path


class ShardedSuite(StoreSuite):
    """The store suite with every dataset that ``write`` makes sharded."""

    def path(self, tmp_path: Path, name: str = "ds") -> Path:
        return tmp_path / f"{name}.sharded"

    def write(self, path: Path, parts: dict[str, list[tuple]], **meta) -> Path:
        # row ids run on across chunks as ooc.create numbers them
        start, numbered = 0, {}
        for split, chunks in parts.items():
            numbered[split] = []
            for x, y, *ids in chunks:
                n = x.shape[0]
                numbered[split].append((x, y, ids[0] if ids else np.arange(start, start + n)))
                start += n
        return write_sharded(path, self.format, numbered, **meta)

    def set_format_version(self, path: Path, version: int) -> None:
        manifest = json.loads((path / SHARDS_MANIFEST).read_text())
        manifest["format_version"] = version
        (path / SHARDS_MANIFEST).write_text(json.dumps(manifest))

    def mapped_x_bytes(self, path: Path) -> int:
        n_parts = len(json.loads((path / SHARDS_MANIFEST).read_text())["splits"]["train"]["parts"])
        return sum(mapped_resident_bytes(self.x_file(path, k)) for k in range(n_parts))

    @pytest.mark.parametrize("verify", ["once", "always"])
    def test_damage_is_found_in_the_last_block_left_to_check(self, tmp_path, verify):
        # the error names the part and its rows; every other row still reads
        path, x = self.write_damaged(tmp_path)
        part, local = self.part_of_row(path, 12_345)
        with ooc.open(path, verify=verify) as ds:
            np.testing.assert_array_equal(ds.train.x[:12_345 - local], x[:12_345 - local])
            with pytest.raises(ooc.ChecksumError, match=rf"{part}.*rows \d+:\d+"):
                ds.train.x[12_345:12_346]

    def part_path(self, path: Path, index: int) -> Path:
        manifest = json.loads((path / SHARDS_MANIFEST).read_text())
        return path / manifest["splits"]["train"]["parts"][index]["path"]

    def part_of_row(self, path: Path, row: int) -> tuple[Path, int]:
        manifest = json.loads((path / SHARDS_MANIFEST).read_text())
        for part in manifest["splits"]["train"]["parts"]:
            if row < part["n_rows"]:
                return path / part["path"], row
            row -= part["n_rows"]
        raise IndexError(row)

    def test_views_match_reads_and_are_read_only(self, tmp_path):
        # a view inside one part is that part's view; one across parts a read-only copy
        rng = np.random.default_rng(5)
        x = rng.random((20_000, 40)).astype(np.float32)
        y = rng.integers(0, 4, 20_000)
        chunks = [(x[a:a + 7000], y[a:a + 7000]) for a in range(0, 20_000, 7000)]
        split = ooc.open(self.write(self.path(tmp_path), {"train": chunks})).train
        for a, b in [(0, 20_000), (0, 1), (5, 5), (2040, 2050), (100, 2000), (6999, 7001),
                     (1234, 19_999), (19_999, 20_000)]:
            for column, ref in ((split.x, x), (split.y, y)):
                got = column.view(a, b)
                assert not got.flags.writeable and got.dtype == ref.dtype
                np.testing.assert_array_equal(got, ref[a:b])
                assert column.read(a, b).flags.writeable

    def test_views_of_many_parts_keep_resident_memory_bounded(self, tmp_path, monkeypatch):
        # the release budget is the process's, not each part file's: an epoch over
        # 24 parts keeps as little mapped as one over a single file
        if not (_platform.MADVISE and self.direct_reads() and Path("/proc/self/smaps").exists()):
            pytest.skip("views are copies here, or no smaps to count mapped pages")
        monkeypatch.setattr(_file, "VIEW_RELEASE_BYTES", 4 << 20)
        x = np.random.default_rng(6).random((24 * 1024, 400)).astype(np.float32)  # 37.5 MiB
        chunks = [(x[a:a + 3072], np.zeros(3072, int)) for a in range(0, len(x), 3072)]
        path = self.write(self.path(tmp_path), {"train": chunks})
        split = ooc.open(path, verify="never").train
        held = []
        for i in range(len(split) // 512):
            held.append(split.x.view(i * 512, (i + 1) * 512))
            np.testing.assert_array_equal(held[-1], x[i * 512:(i + 1) * 512])
        resident = self.mapped_x_bytes(path)
        assert resident <= 8 << 20, resident
        np.testing.assert_array_equal(np.concatenate(held), x)


class TestShardedHdf5Store(ShardedSuite):
    format = "hdf5"
    direct_reads = TestHdf5Store.direct_reads

    def flip_byte_in_x(self, path: Path, row: int, n_cols: int) -> None:
        TestHdf5Store.flip_byte_in_x(self, *self.part_of_row(path, row), n_cols)

    def x_file(self, path: Path, part: int = 0) -> Path:
        return self.part_path(path, part)


class TestShardedNpyStore(ShardedSuite):
    format = "npy"

    def flip_byte_in_x(self, path: Path, row: int, n_cols: int) -> None:
        part, local = self.part_of_row(path, row)
        TestNpyStore.flip_byte_in_x(self, part, local, n_cols)

    def x_file(self, path: Path, part: int = 0) -> Path:
        return self.part_path(path, part) / "train" / "x.npy"
