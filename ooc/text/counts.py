"""Exact counting of more distinct keys than fit in memory.

Partial counts ``(key, count)`` are appended to ``P`` partition files on
disk, the partition chosen by a hash of the key.  :meth:`SpilledCounts.reduce`
then sums one partition at a time; a partition larger than the memory
budget is split again by further hash bits before it is summed.  Memory is
bounded by the budget, not by the number of distinct keys, and the result
is exact (this is the shuffle-and-reduce of a map-reduce job).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..store._disk import writing
from . import kernels

_RECORD = np.dtype([("key", "<u8"), ("count", "<i8")])
_MIX = np.uint64(0x9E3779B97F4A7C15)
_FANOUT_BITS = 4


def _partition(keys: np.ndarray, level: int, bits: int) -> np.ndarray:
    """Partition index of each key at a split level (``bits`` hash bits per level)."""
    hashed = keys * _MIX
    shift = np.uint64(64 - bits * (level + 1))
    return ((hashed >> shift) & np.uint64((1 << bits) - 1)).astype(np.intp)


def partition_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """The partition every key is spilled to by a :class:`SpilledCounts` of ``bits``."""
    return _partition(keys, 0, bits)


def _scatter(records: np.ndarray, parts: np.ndarray, n_parts: int,
             paths: list[Path]) -> None:
    order, bounds = kernels.group_order(parts, n_parts)
    sorted_records = records[order]
    for p in range(n_parts):
        piece = sorted_records[bounds[p]:bounds[p + 1]]
        if len(piece):
            with writing(paths[p]), open(paths[p], "ab") as f:
                piece.tofile(f)


def sum_counts(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and the sum of their counts."""
    order = np.argsort(keys)
    keys, counts = keys[order], counts[order]
    if not len(keys):
        return keys, counts
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(counts, starts)


class SpilledCounts:
    """Counts keyed by uint64, spilled to partition files under ``directory``."""

    def __init__(self, directory: str | Path, partition_bits: int = 6) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bits = partition_bits
        self.n_parts = 1 << partition_bits
        self.paths = [self.directory / f"part-{p:04d}.bin" for p in range(self.n_parts)]

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Append partial counts (keys may repeat, within and across calls)."""
        records = np.empty(len(keys), dtype=_RECORD)
        records["key"], records["count"] = keys, counts
        _scatter(records, _partition(keys, 0, self.bits), self.n_parts, self.paths)

    def sizes(self) -> list[int]:
        """Bytes in each partition file."""
        return [p.stat().st_size if p.exists() else 0 for p in self.paths]

    def truncate(self, sizes: list[int]) -> None:
        """Cut every partition back to ``sizes`` (undo appends after a crash)."""
        for path, size in zip(self.paths, sizes, strict=True):
            if path.exists():
                os.truncate(path, size)

    def reduce(self, memory_budget: int, min_count: int = 1) -> Iterator[
            tuple[np.ndarray, np.ndarray]]:
        """Yield ``(keys, totals)`` per partition, keeping totals >= ``min_count``.

        Keys are sorted within a partition, not across partitions.
        """
        for _, keys, totals in self.reduce_partitions(memory_budget, min_count):
            yield keys, totals

    def reduce_partitions(self, memory_budget: int, min_count: int = 1) -> Iterator[
            tuple[int, np.ndarray, np.ndarray]]:
        """Like :meth:`reduce`, with the partition of each piece: ``(p, keys, totals)``."""
        for p, path in enumerate(self.paths):
            if path.exists():
                for keys, totals in _reduce_file(path, memory_budget, min_count, level=1,
                                                 bits=_FANOUT_BITS, first_bits=self.bits):
                    yield p, keys, totals




def _reduce_file(path: Path, budget: int, min_count: int, level: int, bits: int,
                 first_bits: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    size = path.stat().st_size
    # argsort plus gathered copies need about four times the records in memory
    if size * 4 <= budget or level * bits + first_bits + bits > 60:
        records = np.fromfile(path, dtype=_RECORD)
        keys, totals = sum_counts(records["key"], records["count"])
        keep = totals >= min_count
        yield keys[keep], totals[keep]
        return
    n_parts = 1 << bits
    sub_paths = [path.with_name(f"{path.name}.{level}-{p:02d}") for p in range(n_parts)]
    for p in sub_paths:
        p.unlink(missing_ok=True)
    piece_rows = max(1, budget // (4 * _RECORD.itemsize))
    records_file = np.memmap(path, dtype=_RECORD, mode="r")
    for start in range(0, len(records_file), piece_rows):
        piece = np.array(records_file[start:start + piece_rows])
        hashed_level = _partition(piece["key"] * _MIX, level, bits)
        _scatter(piece, hashed_level, n_parts, sub_paths)
    del records_file
    for sub in sub_paths:
        if sub.exists():
            yield from _reduce_file(sub, budget, min_count, level + 1, bits, first_bits)
            sub.unlink()
