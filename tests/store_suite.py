"""The store test suite every backend passes (inherit it, set ``format``).

Each test writes its own data under ``tmp_path``.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse

import ooc
from ooc import _platform, shuffle
from ooc.store import _atomic, _file


def sparse_rows(n: int, d: int, seed: int, empty_every: int = 4) -> scipy.sparse.csr_matrix:
    """Random float32 CSR with some empty rows."""
    m = scipy.sparse.random(n, d, density=0.15, format="csr", dtype=np.float32,
                            random_state=seed)
    m = m.tolil()
    for i in range(0, n, empty_every):
        m.rows[i], m.data[i] = [], []
    return m.tocsr()


class StoreSuite:
    """Round trips, metadata, versions, crash safety and integrity."""

    format: str

    def path(self, tmp_path: Path, name: str = "ds") -> Path:
        return tmp_path / (f"{name}.h5" if self.format == "hdf5" else name)

    def write(self, path: Path, parts: dict[str, list[tuple]], **meta) -> Path:
        with ooc.create(path, self.format) as w:
            for split, chunks in parts.items():
                for chunk in chunks:
                    w.append(split, *chunk)
            if meta:
                w.set_metadata(**meta)
        return path

    @pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64", "uint8", "int16"])
    def test_dense_round_trip(self, tmp_path, dtype):
        rng = np.random.default_rng(0)
        x = (rng.random((1000, 7)) * 100).astype(dtype)
        y = rng.integers(0, 3, 1000)
        sizes = [0, 1, 333, 0, 250, 416]
        bounds = np.cumsum([0, *sizes])
        chunks = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]
        ds = ooc.open(self.write(self.path(tmp_path), {"train": chunks}))
        split = ds.train
        assert len(split) == 1000 and split.shape == (1000, 7) and split.x.dtype == x.dtype
        np.testing.assert_array_equal(split.x[:], x)
        np.testing.assert_array_equal(split.x[123:777], x[123:777])
        np.testing.assert_array_equal(split.x[-3], x[-3])
        np.testing.assert_array_equal(split.y[5:900], y[5:900])
        np.testing.assert_array_equal(split.row_ids[:], np.arange(1000))
        assert split.x[10:10].shape == (0, 7)

    @pytest.mark.parametrize("dtype", ["int16", "float16", "float64", "longdouble"])
    def test_large_reads_at_every_alignment(self, tmp_path, dtype):
        # Reads of 16 KiB and more go into buffers placed by file offset
        # (ooc._buffers.empty_for_read): check the values at many offsets.
        rng = np.random.default_rng(1)
        x = (rng.random((3000, 37)) * 1000).astype(dtype)
        chunks = [(x[a:a + 1100], np.zeros(len(x[a:a + 1100]), int)) for a in range(0, 3000, 1100)]
        split = ooc.open(self.write(self.path(tmp_path), {"train": chunks})).train
        for start in range(0, 1500, 37):
            for length in (64, 500, 1500):
                got = split.x[start:start + length]
                assert got.flags.c_contiguous and got.flags.aligned and got.flags.writeable
                np.testing.assert_array_equal(got, x[start:start + length])

    def test_batches_with_sizes_that_do_not_divide(self, tmp_path):
        x = np.arange(1001 * 3, dtype=np.int32).reshape(1001, 3)
        y = np.arange(1001) % 5
        chunks = [(x[a:a + 97], y[a:a + 97]) for a in range(0, 1001, 97)]
        ds = ooc.open(self.write(self.path(tmp_path), {"train": chunks}))
        got = list(ds.train.iter_batches(64))
        assert [len(b[1]) for b in got] == [64] * 15 + [41]
        np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
        assert ds.train.steps_per_epoch(64) == 16
        assert ds.train.steps_per_epoch(64, drop_remainder=True) == 15

    def test_views_match_reads_and_are_read_only(self, tmp_path):
        rng = np.random.default_rng(5)
        x = rng.random((20_000, 40)).astype(np.float32)
        y = rng.integers(0, 4, 20_000)
        chunks = [(x[a:a + 7000], y[a:a + 7000]) for a in range(0, 20_000, 7000)]
        split = ooc.open(self.write(self.path(tmp_path), {"train": chunks})).train
        for a, b in self.view_spans(split):
            for column, ref in ((split.x, x), (split.y, y)):
                got = column.view(a, b)
                assert not got.flags.writeable and got.dtype == ref.dtype
                np.testing.assert_array_equal(got, ref[a:b])
                assert column.read(a, b).flags.writeable
                mapped = self.view_is_mapped(column, a, b)
                if mapped is not None:  # two views of the same rows: the same mapped bytes
                    assert np.shares_memory(got, column.view(a, b)) == mapped

    def view_spans(self, split: Any) -> list[tuple[int, int]]:
        """Row ranges of 20,000 rows written in chunks of 7,000 to view in the test above."""
        block = split.x._store._array("train/x").verifier.block_rows
        assert block < 20_000
        return [(0, 20_000), (0, 1), (5, 5), (block - 3, block + 3), (block, 2 * block),
                (1234, 19_999), (19_999, 20_000)]

    def view_is_mapped(self, column: Any, a: int, b: int) -> bool | None:
        """Whether ``column.view(a, b)`` maps the file (None: not checked).  HDF5 maps only
        rows inside one chunk (its verifier block); without madvise views are copies."""
        rows = column._store._array(column.key).verifier.block_rows
        mapped = b > a and (self.format == "npy" or a // rows == (b - 1) // rows)
        return mapped and _platform.MADVISE and self.direct_reads()

    def test_batches_are_read_only_views_unless_copied(self, tmp_path):
        x = np.arange(1001 * 3, dtype=np.int32).reshape(1001, 3)
        y = np.arange(1001) % 5
        split = ooc.open(self.write(self.path(tmp_path), {"train": [(x, y)]})).train
        for copy, window in itertools.product((False, True), (1, 3)):
            got = list(split.iter_batches(64, shuffle=True, seed=1, shuffle_window=window,
                                          copy=copy))
            assert all(b.flags.writeable == copy for batch in got for b in batch)
            rows = np.concatenate([b[0] for b in got])
            np.testing.assert_array_equal(rows[np.argsort(rows[:, 0])], x)
            np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), rows[:, 0] // 3 % 5)

    @pytest.mark.parametrize(("rows", "stride", "release"),
                             [(512, 512, True), (1, 41, True), (512, 512, False)])
    def test_views_stay_right_and_resident_memory_bounded(self, tmp_path, monkeypatch,
                                                          rows, stride, release):
        # The file's map lets its pages go once views could have mapped
        # VIEW_RELEASE_BYTES, small views counted by the pages they can map;
        # views made before a release still read the right values.  Without
        # releases (the control) all 32 MiB stay mapped.
        monkeypatch.setattr(_file, "VIEW_RELEASE_BYTES", 1 << 20 if release else 1 << 40)
        x = np.random.default_rng(6).random((20_480, 400)).astype(np.float32)  # 32 MiB
        path = self.write(self.path(tmp_path), {"train": [(x, np.zeros(len(x), int))]})
        split = ooc.open(path, verify="never").train
        starts = range(0, len(x) - rows + 1, stride)
        held = []
        for a in starts:
            view = split.x.view(a, a + rows)
            np.testing.assert_array_equal(view, x[a:a + rows])  # touched, as a feed would
            held.append(view)
        resident = self.mapped_x_bytes(path)
        mapped = _platform.MADVISE and self.direct_reads()  # else views are copies
        assert resident < 12 << 20 if release or not mapped else resident > 24 << 20
        for a, view in zip(starts, held, strict=True):
            np.testing.assert_array_equal(view, x[a:a + rows])

    def test_views_in_order_are_released_only_once_their_folios_fill_the_budget(
            self, tmp_path, monkeypatch):
        # Consecutive views share large folios: counted once each, 12 MiB of
        # views in order stay mapped under a 16 MiB budget (counted view by
        # view, each 800 KB view was 2-4 MiB and the map was dropped every
        # few views, so that every page was mapped again: a fifth of an
        # epoch's time).  Past the budget, the map still lets go.
        if not (_platform.MADVISE and self.direct_reads() and Path("/proc/self/smaps").exists()):
            pytest.skip("views are copies here, or no smaps to count mapped pages")
        monkeypatch.setattr(_file, "VIEW_RELEASE_BYTES", 16 << 20)
        x = np.random.default_rng(7).random((40_960, 400)).astype(np.float32)  # 64 MiB
        path = self.write(self.path(tmp_path), {"train": [(x, np.zeros(len(x), int))]})
        split = ooc.open(path, verify="never").train
        for a in range(0, 15 * 512, 512):  # 12 MB
            np.testing.assert_array_equal(split.x.view(a, a + 512), x[a:a + 512])
        assert self.mapped_x_bytes(path) >= 11 << 20
        for a in range(15 * 512, len(x), 512):
            np.testing.assert_array_equal(split.x.view(a, a + 512), x[a:a + 512])
        assert self.mapped_x_bytes(path) <= 20 << 20

    def x_file(self, path: Path) -> Path:
        raise NotImplementedError

    def mapped_x_bytes(self, path: Path) -> int:
        """Resident bytes of this process's maps of the file(s) holding ``train/x``."""
        return mapped_resident_bytes(self.x_file(path))

    def direct_reads(self) -> bool:
        """Whether this backend reads rows straight from the file here (else via its library)."""
        return True

    @pytest.mark.parametrize("sparse", [False, True])
    def test_shards_hold_every_row_once(self, tmp_path, sparse):
        # split.shard(i, n): contiguous ranges, every row in exactly one, the batch API
        # on each; equal=True: the same rows (so batches) per shard, the rest left out
        n = 1003
        x = sparse_rows(n, 30, seed=9) if sparse else np.arange(n * 3, dtype=np.float32
                                                                 ).reshape(n, 3)
        y = np.arange(n) % 3
        chunks = [(x[a:a + 300], y[a:a + 300]) for a in range(0, n, 300)]
        split = ooc.open(self.write(self.path(tmp_path), {"train": chunks})).train
        shards = [split.shard(i, 4) for i in range(4)]
        assert [len(s) for s in shards] == [250, 251, 251, 251]
        rows = np.concatenate([np.concatenate([b[1] for b in s.iter_batches(64)])
                               for s in shards])
        np.testing.assert_array_equal(rows, y)
        got = [s.x[:] for s in shards]
        np.testing.assert_array_equal(
            scipy.sparse.vstack(got).toarray() if sparse else np.concatenate(got),
            x.toarray() if sparse else x)
        np.testing.assert_array_equal(shards[1].row_ids[:], np.arange(250, 501))
        assert sum(s.label_counts for s in shards).tolist() == split.label_counts.tolist()
        assert sum(s.nnz for s in shards) == split.nnz
        back = pickle.loads(pickle.dumps(shards[2].batch_reader(100)))  # to loader workers
        np.testing.assert_array_equal(back.read(0)[1], y[501:601])
        equal = [split.shard(i, 4, equal=True) for i in range(4)]
        assert {len(s) for s in equal} == {250}
        assert {s.steps_per_epoch(64) for s in equal} == {4}
        np.testing.assert_array_equal(equal[3].y[:], y[750:1000])
        with pytest.raises(ValueError, match="0 <= index < count"):
            split.shard(4, 4)

    def test_sparse_round_trip_with_empty_rows_and_chunks(self, tmp_path):
        x = sparse_rows(500, 300, seed=1)
        y = np.arange(500) % 4
        cuts = [0, 0, 7, 7, 200, 499, 500]
        chunks = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(cuts)]
        empty = scipy.sparse.csr_matrix((0, 300), dtype=np.float32)
        chunks.insert(3, (empty, np.zeros(0, dtype=int)))
        ds = ooc.open(self.write(self.path(tmp_path), {"train": chunks}))
        split = ds.train
        assert split.is_sparse and split.shape == (500, 300) and split.nnz == x.nnz
        for a, b in [(0, 500), (0, 1), (3, 4), (150, 420), (499, 500), (10, 10)]:
            got = split.x[a:b]
            assert isinstance(got, scipy.sparse.csr_matrix) and got.has_sorted_indices
            np.testing.assert_array_equal(got.toarray(), x[a:b].toarray())
            for row in range(got.shape[0]):
                idx = got.indices[got.indptr[row]:got.indptr[row + 1]]
                assert (np.diff(idx) > 0).all()

    def test_unsorted_duplicate_csr_input_is_canonicalised(self, tmp_path):
        # row 0 has columns 5, 2, 5 (duplicate 5 sums to 3.0)
        x = scipy.sparse.csr_matrix((np.array([1.0, 4.0, 2.0], np.float32),
                                     np.array([5, 2, 5]), np.array([0, 3])), shape=(1, 8))
        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(x, [0])]}))
        got = ds.train.x[0:1]
        assert got.indices.tolist() == [2, 5] and got.data.tolist() == [4.0, 3.0]

    def test_metadata_round_trip(self, tmp_path):
        x = np.ones((4, 3), np.float32)
        config = {"vectorizer": "ngram", "ngram_range": [1, 2], "nested": {"k": None}}
        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(x, [0, 1, 1, 0])],
                                                       "val": [(x[:1], [1])]},
                                 classes=["négatif", "positive"],
                                 feature_names=["a", "b c", "ü"], config=config))
        assert ds.classes == ["négatif", "positive"]
        assert ds.feature_names == ["a", "b c", "ü"]
        assert ds.vocabulary == {"a": 0, "b c": 1, "ü": 2}
        assert ds.metadata == config
        assert list(ds.splits) == ["train", "val"] and ds.val is ds["val"]
        assert ds.train.label_counts.tolist() == [2, 2]
        with pytest.raises(ooc.SplitNotFoundError, match="no split 'test'"):
            ds.test  # noqa: B018

    def test_dataset_is_a_mapping_of_splits(self, tmp_path):
        x = np.ones((3, 2), np.float32)
        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(x, [0, 1, 0])],
                                                       "val": [(x[:1], [1])]}))
        assert list(ds) == ["train", "val"] and len(ds) == 2 and list(ds.keys()) == list(ds)
        assert "train" in ds and "test" not in ds and 3 not in ds
        assert ds["train"] is ds.train and dict(ds.items()) == {"train": ds.train, "val": ds.val}
        with pytest.raises(ooc.SplitNotFoundError, match="no split 'test'"):
            ds["test"]

    @pytest.mark.parametrize("name", ["verify", "manifest", "extras", "splits", "close", "keys",
                                      "path", "extra", "vectorizer"])
    def test_split_names_the_dataset_uses_are_refused(self, tmp_path, name):
        with ooc.create(self.path(tmp_path), self.format) as w:
            with pytest.raises(ooc.ChunkError, match=f"ds.{name}; pick another name"):
                w.append(name, np.zeros((1, 2), np.float32), [0])
            w.append("train", np.zeros((1, 2), np.float32), [0])

    def test_every_public_dataset_attribute_is_reserved(self, tmp_path):
        from ooc.reader import RESERVED_SPLIT_NAMES

        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(np.ones((1, 1)), [0])]}))
        public = {n for n in [*dir(ds), *vars(ds)] if not n.startswith("_")}
        assert public <= RESERVED_SPLIT_NAMES

    def test_explicit_row_ids(self, tmp_path):
        x = np.zeros((3, 2), np.float32)
        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(x, [0, 0, 0], [10, 4, 99])]}))
        assert ds.train.row_ids[:].tolist() == [10, 4, 99]

    def test_bad_chunks_are_refused_before_writing(self, tmp_path):
        path = self.path(tmp_path)
        with ooc.create(path, self.format) as w:
            w.append("train", np.zeros((2, 3), np.int32), [0, 1])
            with pytest.raises(ooc.ChunkError, match="3 columns"):
                w.append("train", np.zeros((2, 4), np.int32), [0, 1])
            with pytest.raises(ooc.ChunkError, match="does not convert safely"):
                w.append("train", np.zeros((2, 3), np.float64), [0, 1])
            with pytest.raises(ooc.ChunkError, match="integer class labels"):
                w.append("train", np.zeros((2, 3), np.int32), [0.5, 1.0])
            with pytest.raises(ooc.ChunkError, match="one label per row"):
                w.append("train", np.zeros((2, 3), np.int32), [0])
            with pytest.raises(ooc.ChunkError, match="sparse"):
                w.append("train", scipy.sparse.csr_matrix((2, 3), dtype=np.float32), [0, 1])
            w.append("train", np.zeros((1, 3), np.int16), [2])  # safe cast is fine
        assert len(ooc.open(path).train) == 3

    def test_class_names_must_cover_labels(self, tmp_path):
        with pytest.raises(ooc.ChunkError, match="only 2 class names"):
            self.write(self.path(tmp_path), {"train": [(np.zeros((1, 1)), [2])]},
                       classes=["a", "b"])
        assert not self.path(tmp_path).exists()
        assert not _atomic.leftover_temporaries(self.path(tmp_path))

    def test_existing_dataset_is_not_overwritten_by_default(self, tmp_path):
        path = self.write(self.path(tmp_path), {"train": [(np.zeros((1, 1)), [0])]})
        with pytest.raises(ooc.DatasetExistsError):
            ooc.create(path, self.format)
        with ooc.create(path, self.format, overwrite=True) as w:
            w.append("train", np.ones((5, 1)), [0] * 5)
        assert len(ooc.open(path).train) == 5

    def test_failed_write_leaves_previous_dataset(self, tmp_path):
        path = self.write(self.path(tmp_path), {"train": [(np.zeros((2, 1)), [0, 0])]})
        with pytest.raises(RuntimeError), ooc.create(path, self.format, overwrite=True) as w:
            w.append("train", np.ones((9, 1)), [0] * 9)
            raise RuntimeError("boom")
        assert len(ooc.open(path).train) == 2
        assert not _atomic.leftover_temporaries(path)

    def test_nothing_is_visible_before_commit(self, tmp_path):
        path = self.path(tmp_path)
        w = ooc.create(path, self.format)
        w.append("train", np.zeros((3, 2)), [0, 1, 0])
        assert not path.exists()
        with pytest.raises(ooc.DatasetNotFoundError, match="did not finish|stopped before"):
            ooc.open(path)
        (tmp,) = _atomic.leftover_temporaries(path)
        with pytest.raises(ooc.IncompleteDatasetError, match="did not finish|not finished"):
            ooc.open(tmp)
        w.commit()
        assert len(ooc.open(path).train) == 3

    def test_format_version_is_checked(self, tmp_path):
        path = self.write(self.path(tmp_path), {"train": [(np.zeros((1, 1)), [0])]})
        self.set_format_version(path, 99)
        with pytest.raises(ooc.FormatVersionError, match="upgrade ooc"):
            ooc.open(path)

    def set_format_version(self, path: Path, version: int) -> None:
        raise NotImplementedError

    def write_damaged(self, tmp_path: Path) -> tuple[Path, np.ndarray]:
        x = np.random.default_rng(3).random((20_000, 40)).astype(np.float32)
        path = self.write(self.path(tmp_path), {"train": [(x, np.zeros(20_000, int))]})
        self.flip_byte_in_x(path, row=12_345, n_cols=40)
        return path, x

    def test_flipped_byte_is_detected(self, tmp_path):
        path, x = self.write_damaged(tmp_path)
        ds = ooc.open(path)
        np.testing.assert_array_equal(ds.train.x[:5000], x[:5000])  # other blocks still read
        with pytest.raises(ooc.ChecksumError, match=r"'train'.*'x'.*rows \d+:\d+"):
            ds.train.x[12_000:12_500]
        with pytest.raises(ooc.ChecksumError):
            ooc.open(path).verify()

    @pytest.mark.parametrize("verify", ["once", "always"])
    def test_damage_is_found_in_the_last_block_left_to_check(self, tmp_path, verify):
        path, x = self.write_damaged(tmp_path)
        with ooc.open(path, verify=verify) as ds:
            rows = ds.train.x._store._array("train/x").verifier.block_rows
            bad = 12_345 // rows * rows
            np.testing.assert_array_equal(ds.train.x[:bad], x[:bad])  # every other block
            np.testing.assert_array_equal(ds.train.x[bad + rows:], x[bad + rows:])
            # the block's rows, or the rows asked for where HDF5 checks chunks itself
            with pytest.raises(ooc.ChecksumError, match=rf"rows {bad}:({bad + rows}|{bad + 1})"):
                ds.train.x[bad:bad + 1]

    def test_verify_always_checks_every_read_again(self, tmp_path):
        x = np.random.default_rng(4).random((20_000, 40)).astype(np.float32)
        path = self.write(self.path(tmp_path), {"train": [(x, np.zeros(20_000, int))]})
        with ooc.open(path, verify="always") as ds:
            np.testing.assert_array_equal(ds.train.x[:], x)
            self.flip_byte_in_x(path, row=12_345, n_cols=40)
            with pytest.raises(ooc.ChecksumError):
                ds.train.x[12_000:12_500]

    def flip_byte_in_x(self, path: Path, row: int, n_cols: int) -> None:
        raise NotImplementedError

    def kill_writer_mid_write(self, path: Path, overwrite: bool, shuffle: bool = False) -> None:
        """Start a writer in a child process and SIGKILL it while it appends."""
        script = textwrap.dedent(f"""
            import numpy as np, ooc
            w = ooc.create({str(path)!r}, {self.format!r}, overwrite={overwrite!r},
                           shuffle={shuffle!r}, memory_budget=16 << 20)
            x = np.ones((20_000, 50), np.float32)
            for i in range(10_000):
                w.append("train", x, np.zeros(20_000, int))
                if i == 3:
                    print("writing", flush=True)
            w.commit()
        """)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"writing"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def test_sigkill_mid_write_leaves_no_dataset(self, tmp_path):
        path = self.path(tmp_path)
        self.kill_writer_mid_write(path, overwrite=False)
        assert not path.exists()
        with pytest.raises(ooc.DatasetNotFoundError, match="stopped before committing"):
            ooc.open(path)
        (tmp,) = _atomic.leftover_temporaries(path)
        with pytest.raises(ooc.IncompleteDatasetError, match="did not finish|not finished"):
            ooc.open(tmp)

    def test_finished_temporary_of_a_killed_writer_is_refused(self, tmp_path):
        # killed between its last fsync and the rename: the temporary is complete
        path = self.path(tmp_path)
        script = textwrap.dedent(f"""
            import os, signal, numpy as np, ooc, ooc.writer
            ooc.writer.publish = lambda tmp, final: os.kill(os.getpid(), signal.SIGKILL)
            with ooc.create({str(path)!r}, {self.format!r}) as w:
                w.append("train", np.ones((5, 2), np.float32), np.zeros(5, int))
        """)
        assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
        (tmp,) = _atomic.leftover_temporaries(path)
        with pytest.raises(ooc.IncompleteDatasetError, match="temporary"):
            ooc.open(tmp)
        with pytest.raises(ooc.DatasetNotFoundError, match="stopped before committing"):
            ooc.open(path)

    def test_sigkill_during_overwrite_keeps_previous(self, tmp_path):
        path = self.write(self.path(tmp_path), {"train": [(np.zeros((7, 2)), [0] * 7)]})
        self.kill_writer_mid_write(path, overwrite=True)
        assert len(ooc.open(path).train) == 7

    # Shuffled writes (issue 15, item 2): ooc.create(..., shuffle=True).

    def write_sorted(self, path: Path, sparse: bool, **options) -> tuple[Path, dict]:
        """A class-sorted source (4 classes) appended in uneven chunks; returns its rows."""
        n = 3000
        x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
        if sparse:
            x = scipy.sparse.csr_matrix(x * (np.arange(n)[:, None] % 3 != 0))  # empty rows too
        y = np.repeat(np.arange(4), n // 4)
        val_ids = 10_000 + np.arange(500)[::-1]
        with ooc.create(path, self.format, **options) as w:
            w.set_metadata(classes=list("abcd"), config={"k": 1})
            for a, b in itertools.pairwise([0, 0, 1, 700, 700, 2100, n]):
                w.append("train", x[a:b], y[a:b])
            w.append("val", x[:500], y[:500], val_ids)
            w.put_array("tag", np.arange(5))
        return path, {"train": (x, y, np.arange(n)), "val": (x[:500], y[:500], val_ids)}

    @pytest.mark.parametrize("sparse", [False, True])
    def test_shuffled_write_holds_every_row_once_in_the_seeded_order(self, tmp_path, sparse):
        path, source = self.write_sorted(self.path(tmp_path), sparse, shuffle=True, seed=5)
        plain, _ = self.write_sorted(self.path(tmp_path, "plain"), sparse)
        with ooc.open(path) as ds, ooc.open(plain) as ref:
            for name, (x, y, ids) in source.items():
                split = ds[name]
                got_ids = split.row_ids[:]
                # the order of ooc preprocess: a function of the seed and the row ids
                np.testing.assert_array_equal(got_ids, ids[shuffle.order(ids, 5)])
                by_id = {int(r): i for i, r in enumerate(ids)}
                rows = np.array([by_id[int(r)] for r in got_ids])
                assert sorted(rows.tolist()) == list(range(len(ids)))  # every row once
                got_x = split.x[:]
                if sparse:
                    assert got_x.has_sorted_indices and split.nnz == x.nnz
                    got_x, x = got_x.toarray(), x.toarray()
                np.testing.assert_array_equal(got_x, x[rows])
                np.testing.assert_array_equal(split.y[:], y[rows])
                assert split.label_counts.tolist() == ref[name].label_counts.tolist()
            assert ds.classes == list("abcd") and ds.metadata == {"k": 1}
            np.testing.assert_array_equal(ds.extra("tag"), np.arange(5))
            assert ds.manifest["splits"] == ref.manifest["splits"]
        assert not _atomic.leftover_temporaries(path)

    def test_shuffled_write_depends_on_the_seed_only(self, tmp_path, monkeypatch):
        def order_of(name: str, buckets: int = 64, bucket_bytes: int | None = None,
                     seed: int = 5) -> np.ndarray:
            monkeypatch.setattr(ooc.writer, "SPILL_BUCKETS", buckets)
            x, n = np.arange(4000, dtype=np.int64)[:, None] * [1, -1], 4000
            with ooc.create(self.path(tmp_path, name), self.format, shuffle=True,
                            seed=seed) as w:
                if bucket_bytes:  # buckets larger than this are split at commit
                    w._spill.bucket_bytes = bucket_bytes
                for a in range(0, n, 600):
                    w.append("train", x[a:a + 600], np.zeros(len(x[a:a + 600]), int))
            with ooc.open(self.path(tmp_path, name)) as ds:
                got = ds.train.x[:]
                np.testing.assert_array_equal(got[:, 0], ds.train.row_ids[:])
                return got[:, 0]

        first = order_of("a")
        assert sorted(first.tolist()) == list(range(4000))
        np.testing.assert_array_equal(first, order_of("b"))
        np.testing.assert_array_equal(first, order_of("c", buckets=1))
        np.testing.assert_array_equal(first, order_of("d", buckets=3, bucket_bytes=6000))
        assert not np.array_equal(first, order_of("e", seed=6))

    def test_shuffled_write_stopped_by_an_exception_leaves_nothing(self, tmp_path):
        path = self.path(tmp_path)
        with pytest.raises(RuntimeError), ooc.create(path, self.format, shuffle=True,
                                                     memory_budget=16 << 20) as w:
            for _ in range(2):  # past the 4 MiB held in memory
                w.append("train", np.ones((60_000, 16), np.float32), np.zeros(60_000, int))
            assert len(_atomic.leftover_temporaries(path)) == 2  # the temporary and the spill
            raise RuntimeError("boom")
        assert not path.exists() and not list(tmp_path.iterdir())

    def test_sigkill_mid_shuffled_write_leaves_no_dataset_and_no_lasting_spill(self, tmp_path):
        path = self.path(tmp_path)
        self.kill_writer_mid_write(path, overwrite=False, shuffle=True)
        assert not path.exists()
        with pytest.raises(ooc.DatasetNotFoundError, match="stopped before committing"):
            ooc.open(path)
        tmp, spill = _atomic.leftover_temporaries(path)
        assert spill == _atomic.spill_path(tmp) and any(spill.rglob("*.bin"))
        for leftover in (tmp, spill):
            with pytest.raises(ooc.IncompleteDatasetError, match="temporary"):
                ooc.open(leftover)
        if not _platform.PROCESS_PROBE:
            return  # no probe of the dead writer: its temporaries are left to the user
        # the next writer of the path deletes both, as it deletes any dead writer's temporary
        with ooc.create(path, self.format, shuffle=True) as w:
            assert _atomic.leftover_temporaries(path) == [w._tmp]
            w.append("train", np.ones((5, 2), np.float32), np.zeros(5, int))
        assert not _atomic.leftover_temporaries(path) and len(ooc.open(path).train) == 5

    def test_reader_pickles_and_reopens(self, tmp_path):
        import pickle

        x = np.arange(30, dtype=np.float32).reshape(10, 3)
        ds = ooc.open(self.write(self.path(tmp_path), {"train": [(x, [0] * 10)]}))
        ds.train.x[0:2]
        ds.train.x.view(0, 2)
        split = pickle.loads(pickle.dumps(ds.train))
        np.testing.assert_array_equal(split.x[4:9], x[4:9])
        np.testing.assert_array_equal(split.x.view(4, 9), x[4:9])

    # An open dataset reads only the files it opened (issue 14, item 1).

    def test_replaced_path_is_not_read_by_an_open_dataset(self, tmp_path):
        path = write_version(self.path(tmp_path), self.format, 1)
        with ooc.open(path) as ds:
            write_version(path, self.format, 2)
            assert read_version(ds) == 1
        with ooc.open(path) as ds:
            assert read_version(ds) == 2

    def test_forked_reader_reads_what_its_parent_opened(self, tmp_path):
        path = write_version(self.path(tmp_path), self.format, 1)
        with ooc.open(path) as ds:
            write_version(path, self.format, 2)
            assert in_forked_child(lambda: read_version(ds)) == 1

    def test_unpickled_reader_refuses_a_replaced_path(self, tmp_path):
        import pickle

        path = write_version(self.path(tmp_path), self.format, 1)
        with ooc.open(path) as ds:
            ds.train.x[:1]
            state = pickle.dumps(ds.train)
            assert read_version_of(pickle.loads(state)) == 1  # same file: reopens
            write_version(path, self.format, 2)
            with pytest.raises(ooc.DatasetChangedError, match=str(path)):
                read_version_of(pickle.loads(state))

    @pytest.mark.slow
    def test_reads_while_another_process_replaces_the_path_never_mix(self, tmp_path):
        path = write_version(self.path(tmp_path), self.format, 0)
        stop = tmp_path / "stop"
        writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import os, sys, time
            sys.path[:0] = {sys.path[:3]!r}
            from tests.store_suite import write_version
            end, v = time.monotonic() + 60, 1
            while time.monotonic() < end and not os.path.exists({str(stop)!r}):
                write_version({str(path)!r}, {self.format!r}, v)
                v += 1
            """)])
        reads, seen, changed = 0, set(), 0
        deadline = time.monotonic() + 60
        while len(seen) < 8 and time.monotonic() < deadline and writer.poll() is None:
            try:
                with ooc.open(path) as ds:
                    seen.add(read_version(ds))  # raises on a mixed read
                reads += 1
            except ooc.DatasetChangedError:  # replaced during open, three times over
                changed += 1
        stop.touch()
        assert writer.wait() == 0
        assert len(seen) >= 8 and changed <= reads, (reads, len(seen), changed)

    def test_open_rejects_other_files(self, tmp_path):
        other = tmp_path / "notes.txt"
        other.write_text("hello")
        with pytest.raises(ooc.NotADatasetError):
            ooc.open(other)
        (tmp_path / "emptydir").mkdir()
        with pytest.raises(ooc.NotADatasetError):
            ooc.open(tmp_path / "emptydir")


def write_version(path: Path | str, fmt: str, v: int) -> Path:
    """Write version ``v`` of a dataset whose every value derives from ``v``."""
    n = 64 + v % 5
    with ooc.create(path, fmt, overwrite=True) as w:
        w.set_metadata(classes=["a", "b", "c"])
        w.append("train", np.full((n, 3), v, np.float32), np.full(n, v % 3),
                 v * 1000 + np.arange(n))
        val = scipy.sparse.csr_matrix(np.full((n, 4), v + 1, np.float32))
        w.append("val", val, np.full(n, v % 3), v * 1000 + np.arange(n))
        w.put_array("tag", np.array([v]))
    return Path(path)


def read_version_of(split: ooc.reader.Split) -> int:
    """The version a split holds, raising if its arrays disagree."""
    x, y, ids = split.x[:], split.y[:], split.row_ids[:]
    values = x.data - 1 if scipy.sparse.issparse(x) else x
    versions = {*np.unique(values).tolist(), *np.unique(ids // 1000).tolist()}
    assert len(versions) == 1, versions
    v = int(versions.pop())
    assert x.shape[0] == len(y) == 64 + v % 5 and (y == v % 3).all(), (v, x.shape, y[:5])
    return v


def read_version(ds: ooc.Dataset) -> int:
    """The version every array of ``ds`` holds, raising if they disagree."""
    versions = {read_version_of(ds.train), read_version_of(ds.val), int(ds.extra("tag")[0])}
    assert len(versions) == 1, versions
    return versions.pop()


def in_forked_child(read) -> object:
    """Run ``read()`` in a forked child and return its result."""
    import pickle

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child exits without returning
        try:
            os.write(w, pickle.dumps(read()))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else None


def mapped_resident_bytes(file: Path) -> int:
    """Resident bytes of this process's memory maps of ``file`` (Linux ``smaps``)."""
    total, current = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first:  # a mapping's header: address range ... path
                current = line.rstrip().endswith(str(file))
            elif current and first == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
