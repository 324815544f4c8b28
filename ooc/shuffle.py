"""Seeded external shuffle: row-aligned arrays through hash-range buckets on disk.

The shuffled order of rows is the order of a seeded 64-bit hash of their
row ids (ties, which practically never happen, by row id): a uniformly
random permutation that depends only on the seed and the row ids.  Rows
that need not fit in memory are *scattered* into ``n`` buckets on disk,
bucket ``b`` holding the rows whose hash falls in the ``b``-th of ``n``
equal ranges; each bucket is loaded and sorted on its own, and the buckets
are read in order.  So the number of buckets, which follows a memory
budget, does not change the order.  Bucket ``b`` of ``n`` is exactly
buckets ``b*k .. b*k+k-1`` of ``n*k``, so a bucket found too large to load
is split ``k`` ways in pieces without changing the order either.

Rows are :class:`Rows`: per-row columns of any trailing shape (labels,
dense feature rows) and *ragged* arrays cut by shared offsets (CSR values
and column indices, token ids).  A bucket is a directory of raw arrays, one
``<name>.bin`` per array (``lengths.bin`` for the offsets), appended to by
every scatter; a :class:`Schema` gives their dtypes.

Used by ``ooc preprocess`` (:mod:`ooc.text.spill`) and by
``ooc.create(..., shuffle=True)`` (:mod:`ooc.writer`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._hash import splitmix64
from .store._disk import writing

_LENGTHS = "lengths"
_ROW_IDS = "row_ids"


def shuffle_seed(seed: int) -> int:
    """The hash seed of the shuffle with ``seed``.

    Derived, so that the order is independent of other hashes of the row
    ids with the same seed (``ooc preprocess`` draws its validation split so).
    """
    return (seed * 0x2545F4914F6CDD1D + 0x5851F42D4C957F2D) % (1 << 63)


def order(row_ids: np.ndarray, seed: int) -> np.ndarray:
    """Positions of ``row_ids`` in shuffled order (a stable sort by hash, then row id)."""
    return np.lexsort((row_ids, splitmix64(row_ids, shuffle_seed(seed))))


def bucket_of(row_ids: np.ndarray, n_buckets: int, seed: int) -> np.ndarray:
    """Bucket of each row: which of ``n_buckets`` equal hash ranges its hash falls in."""
    if not 1 <= n_buckets < 1 << 32:
        raise ValueError(f"n_buckets must be in [1, 2**32); got {n_buckets}.")
    high = splitmix64(row_ids, shuffle_seed(seed)) >> np.uint64(32)
    return ((high * np.uint64(n_buckets)) >> np.uint64(32)).astype(np.int64)


def take_ragged(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index, new_offsets)``: the values of ``rows`` of a ragged array, in that order."""
    lengths = np.diff(offsets)[rows]
    starts = offsets[:-1][rows]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    index = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return index, new_offsets


@dataclass(frozen=True)
class Rows:
    """Row-aligned arrays of ``len(row_ids)`` rows.

    ``columns`` hold one entry (of any trailing shape) per row; ``ragged``
    arrays hold row ``i``'s values at ``[offsets[i]:offsets[i+1]]``, all cut
    by the same ``offsets`` (None when there are none).
    """

    row_ids: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    ragged: dict[str, np.ndarray] = field(default_factory=dict)
    offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.row_ids)

    def take(self, rows: np.ndarray) -> Rows:
        """The given rows, in that order."""
        columns = {name: values[rows] for name, values in self.columns.items()}
        if self.offsets is None:
            return Rows(self.row_ids[rows], columns)
        index, offsets = take_ragged(self.offsets, rows)
        ragged = {name: values[index] for name, values in self.ragged.items()}
        return Rows(self.row_ids[rows], columns, ragged, offsets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = [self.row_ids, *self.columns.values(), *self.ragged.values()]
        return sum(a.nbytes for a in arrays) + (0 if self.offsets is None else self.offsets.nbytes)

    def shuffled(self, seed: int) -> Rows:
        """These rows in shuffled order."""
        return self.take(order(self.row_ids, seed))


def concat(parts: list[Rows]) -> Rows:
    """The rows of every part, in order (at least one part, all with the same arrays)."""
    first = parts[0]
    columns = {name: np.concatenate([p.columns[name] for p in parts]) for name in first.columns}
    row_ids = np.concatenate([p.row_ids for p in parts])
    if first.offsets is None:
        return Rows(row_ids, columns)
    ragged = {name: np.concatenate([p.ragged[name] for p in parts]) for name in first.ragged}
    lengths = [np.diff(p.offsets) for p in parts]  # type: ignore[arg-type]
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    return Rows(row_ids, columns, ragged, offsets)


@dataclass(frozen=True)
class Schema:
    """Stored dtypes: ``columns`` name -> ``(dtype, row shape)``, ``ragged`` name -> dtype.

    A column may be left out of some spills (optional data); a bucket then
    loads without it.
    """

    columns: dict[str, tuple[str, tuple[int, ...]]]
    ragged: dict[str, str] = field(default_factory=dict)

    def empty(self) -> Rows:
        """Rows of this schema, none of them."""
        columns = {name: np.zeros((0, *shape), dtype) for name, (dtype, shape)
                   in self.columns.items()}
        ragged = {name: np.zeros(0, dtype) for name, dtype in self.ragged.items()}
        offsets = np.zeros(1, np.int64) if self.ragged else None
        return Rows(np.zeros(0, np.int64), columns, ragged, offsets)

    def files(self, rows: Rows) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array in its stored dtype)`` of every array of ``rows`` to store."""
        yield _ROW_IDS, rows.row_ids.astype(np.int64, copy=False)
        for name, (dtype, _) in self.columns.items():
            if name in rows.columns:
                yield name, rows.columns[name].astype(dtype, copy=False)
        if self.ragged:
            assert rows.offsets is not None
            yield _LENGTHS, np.diff(rows.offsets).astype(np.int64, copy=False)
            for name, dtype in self.ragged.items():
                yield name, rows.ragged[name].astype(dtype, copy=False)


def bucket_dir(root: Path, bucket: int) -> Path:
    """Directory of bucket ``bucket`` under ``root``."""
    return root / f"{bucket:05d}"


def scatter(root: Path, rows: Rows, n_buckets: int, seed: int, schema: Schema) -> None:
    """Append ``rows`` (in their order) to their buckets of ``n_buckets`` under ``root``."""
    if not len(rows):
        return
    bucket = bucket_of(rows.row_ids, n_buckets, seed)
    by_bucket = np.argsort(bucket, kind="stable")
    sorted_buckets = bucket[by_bucket]
    starts = np.flatnonzero(np.diff(sorted_buckets, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(bucket)], strict=True):
        part = rows.take(by_bucket[start:stop])
        directory = bucket_dir(root, int(sorted_buckets[start]))
        directory.mkdir(parents=True, exist_ok=True)
        for name, values in schema.files(part):
            path = directory / f"{name}.bin"
            with writing(path), open(path, "ab") as f:
                values.tofile(f)


def load_bucket(directory: Path, schema: Schema, seed: int) -> Rows:
    """Every row of one bucket, in shuffled order (no rows if it was never written)."""
    if not (directory / f"{_ROW_IDS}.bin").exists():
        return schema.empty()
    return _read_rows(directory, schema, 0, _row_count(directory)).shuffled(seed)


def ordered_buckets(root: Path, n_buckets: int, seed: int, schema: Schema, max_bytes: int,
                    split: bool = True) -> Iterator[Rows]:
    """The rows of every bucket under ``root`` in shuffled order, one bucket at a time.

    Consumes the spill: each bucket is deleted once read.  A bucket larger
    than ``max_bytes`` on disk is first split into smaller ones, read in
    pieces, so no more than about ``max_bytes`` of rows is loaded at once;
    rows that no hash range separates (one huge row, many rows sharing a
    row id) are loaded whole.
    """
    for bucket in _buckets(root):
        directory = bucket_dir(root, bucket)
        size = _size(directory)
        if not split or size <= max_bytes:
            yield load_bucket(directory, schema, seed)
        else:
            k = -(-2 * size // max_bytes)  # aims at half the limit: hashes are not exactly even
            parts = directory.with_name(directory.name + ".parts")
            for piece in _pieces(directory, schema, max_bytes // 2):
                scatter(parts, piece, n_buckets * k, seed, schema)
            shutil.rmtree(directory)
            yield from ordered_buckets(parts, n_buckets * k, seed, schema, max_bytes,
                                       split=len(_buckets(parts)) > 1)
            shutil.rmtree(parts, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)


def _buckets(root: Path) -> list[int]:
    """The buckets written under ``root``, in order."""
    names = os.listdir(root) if root.is_dir() else []
    return sorted(int(name) for name in names if name.isdigit())


def _size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir())


def _row_count(directory: Path) -> int:
    return (directory / f"{_ROW_IDS}.bin").stat().st_size // 8


def _pieces(directory: Path, schema: Schema, max_bytes: int) -> Iterator[Rows]:
    """The rows of a bucket, in stored order, in pieces of about ``max_bytes``."""
    n = _row_count(directory)
    step = max(1, int(max_bytes // max(1.0, _size(directory) / max(n, 1))))
    value_start = 0
    for start in range(0, n, step):
        piece = _read_rows(directory, schema, start, min(n, start + step), value_start)
        value_start += 0 if piece.offsets is None else int(piece.offsets[-1])
        yield piece


def _read_rows(directory: Path, schema: Schema, start: int, stop: int,
               value_start: int = 0) -> Rows:
    """Rows ``[start, stop)`` of a bucket; their ragged values begin at ``value_start``."""

    def read(name: str, dtype: str, first: int, count: int, width: int = 1) -> np.ndarray:
        item = np.dtype(dtype).itemsize * width
        return np.fromfile(directory / f"{name}.bin", dtype, count * width, offset=first * item)

    n = stop - start
    columns = {name: read(name, dtype, start, n, int(np.prod(shape))).reshape(n, *shape)
               for name, (dtype, shape) in schema.columns.items()
               if (directory / f"{name}.bin").exists()}
    row_ids = read(_ROW_IDS, "<i8", start, n)
    if not schema.ragged:
        return Rows(row_ids, columns)
    offsets = np.concatenate([[0], np.cumsum(read(_LENGTHS, "<i8", start, n))]).astype(np.int64)
    ragged = {name: read(name, dtype, value_start, int(offsets[-1]))
              for name, dtype in schema.ragged.items()}
    return Rows(row_ids, columns, ragged, offsets)
