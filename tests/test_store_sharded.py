"""Sharded datasets (format version 2): the shared store suite over datasets whose
every split is cut into parts, plus what only the sharded layout has."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ooc
from ooc import _platform
from ooc.format import SHARDS_MANIFEST, dump_manifest
from ooc.store import _atomic, _file
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

    def view_spans(self, split: Any) -> list[tuple[int, int]]:
        # inside one part, and across parts (a read-only copy); parts of 7,000 rows
        return [(0, 20_000), (0, 1), (5, 5), (2040, 2050), (100, 2000), (6999, 7001),
                (1234, 19_999), (19_999, 20_000)]

    def view_is_mapped(self, column: Any, a: int, b: int) -> bool | None:
        return None

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


# What only the sharded layout has: parts that could be swapped, lost or left over.

def small_sharded(path: Path, fmt: str = "hdf5", v: int = 0, n_parts: int = 3) -> Path:
    """Parts of equal shape and labels, told apart only by their values."""
    x = np.arange(n_parts * 10 * 2, dtype=np.float32).reshape(-1, 2) + 1000 * v
    y = np.zeros(len(x), int)
    with ooc.create_sharded(path, fmt, overwrite=True) as w:
        w.set_metadata(classes=["a"])
        w.put_array("tag", np.array([v]))
        for k in range(n_parts):
            with w.part("train", k).create() as pw:
                pw.append("train", x[10 * k:10 * k + 10], y[:10], np.arange(10 * k, 10 * k + 10))
    return path


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_part_swapped_for_another_is_refused(tmp_path, fmt):
    path = small_sharded(tmp_path / "ds", fmt)
    parts = sorted((path / "train").iterdir())
    _atomic.remove(parts[2])
    (shutil.copytree if fmt == "npy" else shutil.copy)(parts[1], parts[2])  # 1 also at 2
    with pytest.raises(ooc.DamagedDatasetError, match="not the one the manifest"):
        ooc.open(path)


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_part_of_another_write_is_refused(tmp_path, fmt):
    a = small_sharded(tmp_path / "a", fmt, v=0)
    b = small_sharded(tmp_path / "b", fmt, v=1)
    name = sorted((a / "train").iterdir())[1].name
    _atomic.remove(a / "train" / name)
    (b / "train" / name).rename(a / "train" / name)
    with pytest.raises(ooc.DamagedDatasetError, match=name):
        ooc.open(a)


def test_a_missing_part_is_named(tmp_path):
    path = small_sharded(tmp_path / "ds")
    (path / "train" / "part-00001.h5").unlink()
    with pytest.raises(ooc.DamagedDatasetError, match="part-00001.h5"):
        ooc.open(path)


def test_a_part_path_leaving_the_dataset_is_refused(tmp_path):
    path = small_sharded(tmp_path / "ds")
    manifest = json.loads((path / SHARDS_MANIFEST).read_text())
    manifest["splits"]["train"]["parts"][0]["path"] = "../elsewhere.h5"
    manifest.pop("checksum")
    (path / SHARDS_MANIFEST).write_text(dump_manifest(manifest))  # a valid checksum
    with pytest.raises(ooc.DamagedDatasetError, match="elsewhere"):
        ooc.open(path)


def test_a_flipped_manifest_byte_and_a_newer_version_are_refused(tmp_path):
    path = small_sharded(tmp_path / "ds")
    text = (path / SHARDS_MANIFEST).read_text()
    (path / SHARDS_MANIFEST).write_text(text.replace('"n_rows": 10', '"n_rows": 11', 1))
    with pytest.raises(ooc.ChecksumError):
        ooc.open(path)
    manifest = json.loads(text)
    manifest["format_version"] = 3
    manifest.pop("checksum")
    (path / SHARDS_MANIFEST).write_text(dump_manifest(manifest))
    with pytest.raises(ooc.FormatVersionError, match="1 or 2.*upgrade ooc"):
        ooc.open(path)


def test_reads_and_extras_come_from_the_right_parts(tmp_path):
    path = small_sharded(tmp_path / "ds", v=2, n_parts=4)
    with ooc.open(path) as ds:
        x = ds.train.x[:]
        np.testing.assert_array_equal(x.ravel(), np.arange(80, dtype=np.float32) + 2000)
        np.testing.assert_array_equal(ds.train.row_ids[5:35], np.arange(5, 35))
        assert ds.extra("tag").tolist() == [2] and ds.classes == ["a"]
        assert ds.train.label_counts.tolist() == [40]
        ds.verify()


def test_commit_refuses_a_missing_part_and_publishes_nothing(tmp_path):
    path = tmp_path / "ds"
    w = ooc.create_sharded(path, "hdf5")
    for k in (0, 2):
        with w.part("train", k).create() as pw:
            pw.append("train", np.ones((3, 2)), [0, 0, 0])
    with pytest.raises(ooc.ChunkError, match="part 1 was never written"):
        w.commit()
    assert not path.exists() and not _atomic.leftover_temporaries(path)


def test_commit_refuses_parts_that_disagree(tmp_path):
    w = ooc.create_sharded(tmp_path / "ds", "npy")
    with w.part("train", 0).create() as pw:
        pw.append("train", np.ones((3, 2), np.float32), [0, 0, 0])
    with w.part("train", 1).create() as pw:
        pw.append("train", np.ones((3, 5), np.float32), [0, 0, 0])
    with pytest.raises(ooc.ChunkError, match="part-00001.*same kind, dtype and columns"):
        w.commit()
    w = ooc.create_sharded(tmp_path / "ds", "npy")
    with w.part("train", 0).create() as pw:
        pw.append("val", np.ones((3, 2), np.float32), [0, 0, 0])
    with pytest.raises(ooc.ChunkError, match="not part 0 of split 'train'"):
        w.commit()


def test_a_part_written_again_replaces_the_first(tmp_path):
    # a task retried after its worker was lost writes its part again, whole
    with ooc.create_sharded(tmp_path / "ds", "hdf5") as w:
        target = w.part("train", 0)
        for value in (1.0, 2.0):
            with target.create() as pw:
                pw.append("train", np.full((4, 2), value), [0] * 4)
    assert ooc.open(tmp_path / "ds").train.x[:].tolist() == [[2.0, 2.0]] * 4


def test_sharded_datasets_are_replaced_only_with_overwrite_and_only_whole(tmp_path):
    path = small_sharded(tmp_path / "ds", v=1)
    with pytest.raises(ooc.DatasetExistsError):
        ooc.create_sharded(path)
    small_sharded(path, "npy", v=2, n_parts=2)  # overwrite=True
    assert ooc.open(path).extra("tag").tolist() == [2] and len(ooc.open(path).train) == 20
    (path / "notes.txt").write_text("mine")
    with pytest.raises(ooc.OutputConflictError, match="notes.txt"):
        small_sharded(path, v=3)
    assert (path / "notes.txt").read_text() == "mine"


def test_sigkill_mid_sharded_write_leaves_no_dataset(tmp_path):
    path = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import numpy as np, ooc
        w = ooc.create_sharded({str(path)!r}, "hdf5")
        for k in range(10_000):
            with w.part("train", k).create() as pw:
                pw.append("train", np.ones((1000, 50), np.float32), np.zeros(1000, int))
            if k == 3:
                print("writing", flush=True)
        w.commit()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not path.exists()
    (tmp,) = _atomic.leftover_temporaries(path)
    with pytest.raises(ooc.IncompleteDatasetError):
        ooc.open(tmp)
    small_sharded(path)
    assert len(ooc.open(path).train) == 30
    # the next writer removes the dead one's temporary where it can tell it is dead
    assert _atomic.leftover_temporaries(path) == ([] if _platform.PROCESS_PROBE else [tmp])


def _write_part(target: ooc.PartTarget) -> int:
    rows = np.arange(10 * target.index, 10 * target.index + 10)
    with target.create() as pw:
        pw.append(target.split, rows[:, None].astype(np.float32), rows % 2, rows)
    return os.getpid()


def test_parts_written_by_other_processes_make_one_dataset(tmp_path):
    # the README's example: targets pickled to a process pool
    from concurrent.futures import ProcessPoolExecutor

    with ooc.create_sharded(tmp_path / "ds", format="npy") as w:
        w.set_metadata(classes=["even", "odd"])
        with ProcessPoolExecutor(2) as pool:
            pids = list(pool.map(_write_part, [w.part("train", i) for i in range(8)]))
    assert os.getpid() not in pids
    with ooc.open(tmp_path / "ds") as ds:
        np.testing.assert_array_equal(ds.train.x[:].ravel(), np.arange(80))
        np.testing.assert_array_equal(ds.train.row_ids[:], np.arange(80))
        assert ds.train.label_counts.tolist() == [40, 40]


def test_the_view_budget_releases_the_file_holding_most_first(tmp_path, monkeypatch):
    # one budget for the process: views of a big file (x) past it release that file's
    # pages, not those of a small file read beside it (y), which would be mapped again
    if not _platform.MADVISE:
        pytest.skip("views are copies here")
    monkeypatch.setattr(_file, "VIEW_RELEASE_BYTES", 4 * _file.MAP_GRAIN)
    for other in list(_file._MAPPING):  # files of earlier tests still open here
        other.release_views()
    monkeypatch.setattr(_file, "_held", 0)
    grain = _file.MAP_GRAIN
    big, small = tmp_path / "big", tmp_path / "small"
    big.write_bytes(bytes(10 * grain))
    small.write_bytes(bytes(grain))
    x, y = _file.PerProcessFile(big), _file.PerProcessFile(small)
    u1 = np.dtype(np.uint8)
    y.view(0, (16,), u1)
    for g in range(10):
        x.view(g * grain, (16,), u1)
        assert y._touched == {0} and len(x._touched) <= 3
    assert x._touched == {9}  # released at grains 3, 6 and 9
    x.close()
    y.close()
    assert _file._held == 0 and not list(_file._MAPPING)
