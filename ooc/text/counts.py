"""Exact counting of more distinct keys than fit in memory.

Every :meth:`SpilledCounts.add` writes one *run* file of partial counts
``(key, count)``, its records grouped by ``P`` partitions (chosen by a hash
of the key) in partition order.  :meth:`SpilledCounts.reduce` then sums one
partition at a time, reading that partition's byte range from every run; a
partition larger than the memory budget is split again by further hash
bits before it is summed.  Memory is bounded by the budget, not by the
number of distinct keys, and the result is exact (this is the file-based
shuffle-and-reduce of a map-reduce job: one output file per map task).

Layout of ``run-NNNNNN.bin`` (all little-endian):

* ``P + 1`` int64 bounds: partition ``p``'s records are numbers
  ``bounds[p]`` to ``bounds[p + 1]`` (``bounds[0] == 0``);
* the records, 16 bytes each: uint64 key, int64 count.

A run is written to ``run-NNNNNN.bin.tmp`` and renamed, so a run that is
visible is whole; runs are numbered from 0 in the order they were added.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ResumeError
from ..store._disk import writing
from ..store._file import pread_into
from . import kernels

_RECORD = np.dtype([("key", "<u8"), ("count", "<i8")])
_BOUND = np.dtype("<i8")
_MIX = np.uint64(0x9E3779B97F4A7C15)
_FANOUT_BITS = 4
_GROUP_BYTES = 8 << 20  # partitions read together (one open per run), at most
_RUN_NAME = re.compile(r"run-(\d{6,})\.bin")


def _partition(keys: np.ndarray, level: int, bits: int) -> np.ndarray:
    """Partition index of each key at a split level (``bits`` hash bits per level)."""
    shift = np.uint64(64 - bits * (level + 1))
    mask = np.uint64((1 << bits) - 1)
    if kernels.compiled():
        return kernels.partitions(keys, _MIX, shift, mask)
    return (((keys * _MIX) >> shift) & mask).astype(np.intp)


def partition_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """The partition every key is spilled to by a :class:`SpilledCounts` of ``bits``."""
    return _partition(keys, 0, bits)


def _scatter(records: np.ndarray, parts: np.ndarray, n_parts: int,
             paths: list[Path]) -> None:
    """Append each record to the file of its part (splitting an oversized partition)."""
    order, bounds = kernels.group_order(parts, n_parts)
    sorted_records = records[order]
    for p in range(n_parts):
        piece = sorted_records[bounds[p]:bounds[p + 1]]
        if len(piece):
            with writing(paths[p]), open(paths[p], "ab") as f:
                piece.tofile(f)


def sum_counts(keys: np.ndarray, counts: np.ndarray, *,
               sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and the sum of their counts; the keys sorted, or with ``sort=False``
    in whatever order is fastest (the compiled kernel's)."""
    if kernels.compiled():
        keys, counts = kernels.sum_by_key(keys, counts)
        if sort:  # only the distinct keys
            order = np.argsort(keys)
            keys, counts = keys[order], counts[order]
        return keys, counts
    order = np.argsort(keys)
    keys, counts = keys[order], counts[order]
    if not len(keys):
        return keys, counts
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(counts, starts)


@dataclass(frozen=True)
class _FileRange:
    """``n`` records of a file from byte ``offset``; slices are ranges too, not reads."""

    path: Path
    offset: int
    n: int

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: slice) -> _FileRange:
        start, stop, _ = rows.indices(self.n)
        return _FileRange(self.path, self.offset + start * _RECORD.itemsize, stop - start)

    def read(self) -> np.ndarray:
        """The records."""
        records = np.fromfile(self.path, dtype=_RECORD, count=self.n, offset=self.offset)
        if len(records) != self.n:
            raise _damaged(self.path, f"expected {self.n} count records at byte "
                                      f"{self.offset}, found {len(records)}")
        return records


def _values(records: np.ndarray | _FileRange) -> np.ndarray:
    return records.read() if isinstance(records, _FileRange) else records


@dataclass(frozen=True)
class _Records:
    """Records held in pieces (arrays, or file ranges read when needed); ``stem`` names
    the files a split writes."""

    stem: Path
    segments: tuple[np.ndarray | _FileRange, ...]

    @classmethod
    def of_file(cls, path: Path) -> _Records:
        """Every record of one file of records."""
        return cls(path, (_FileRange(path, 0, path.stat().st_size // _RECORD.itemsize),))

    @property
    def nbytes(self) -> int:
        """Bytes of all the records."""
        return sum(len(segment) for segment in self.segments) * _RECORD.itemsize

    def read(self) -> np.ndarray:
        """All the records in one array."""
        if len(self.segments) == 1:
            return _values(self.segments[0])
        out = np.empty(self.nbytes // _RECORD.itemsize, dtype=_RECORD)
        at = 0
        for segment in self.segments:
            out[at:at + len(segment)] = _values(segment)
            at += len(segment)
        return out

    def pieces(self, rows: int) -> Iterator[np.ndarray]:
        """The records in pieces of at most ``rows``."""
        for segment in self.segments:
            for start in range(0, len(segment), rows):
                yield _values(segment[start:start + rows])


def _damaged(path: Path, what: str) -> ResumeError:
    return ResumeError(f"{path}: {what}: these spilled counts are damaged. If they are in the "
                       "work directory of an interrupted `ooc preprocess`, run it again with "
                       "--restart to start over.")


class SpilledCounts:
    """Counts keyed by uint64, spilled to run files under ``directory``."""

    def __init__(self, directory: str | Path, partition_bits: int = 6) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bits = partition_bits
        self.n_parts = 1 << partition_bits
        found = [int(m.group(1)) for p in self.directory.iterdir()
                 if (m := _RUN_NAME.fullmatch(p.name))]
        self.n_runs = max(found, default=-1) + 1
        self._bounds_of: tuple[int, np.ndarray] = (-1, np.zeros(0))
        self._remove_unfinished()

    def run_path(self, k: int) -> Path:
        """The file of the ``k``-th run written."""
        return self.directory / f"run-{k:06d}.bin"

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Write partial counts as one run (keys may repeat, within and across calls)."""
        if not len(keys):
            return
        order, bounds = kernels.group_order(_partition(keys, 0, self.bits), self.n_parts)
        records = np.empty(len(keys), dtype=_RECORD)
        records["key"], records["count"] = keys[order], counts[order]
        path = self.run_path(self.n_runs)
        tmp = path.with_name(path.name + ".tmp")
        with writing(tmp), open(tmp, "wb") as f:
            np.asarray(bounds, dtype=_BOUND).tofile(f)
            records.tofile(f)
        os.replace(tmp, path)
        self.n_runs += 1
        self._bounds_of = (-1, np.zeros(0))

    def truncate(self, n_runs: int) -> None:
        """Forget every run after the first ``n_runs`` (undo adds after a checkpoint)."""
        missing = [k for k in range(n_runs) if not self.run_path(k).exists()]
        if missing:
            raise _damaged(self.run_path(missing[0]), "this run of counts is missing")
        for k in range(n_runs, self.n_runs):
            self.run_path(k).unlink(missing_ok=True)
        self.n_runs = n_runs
        self._bounds_of = (-1, np.zeros(0))
        self._remove_unfinished()

    def remove(self) -> None:
        """Delete every run (once reduced, they are a third of the work directory)."""
        for k in range(self.n_runs):
            self.run_path(k).unlink(missing_ok=True)
        self.n_runs = 0

    def _remove_unfinished(self) -> None:
        # an add stopped before its rename left its run under a temporary name
        for path in self.directory.glob("run-*.bin.tmp"):
            path.unlink()

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
        for first, stop in self.groups(memory_budget):
            yield from self.reduce_group(first, stop, memory_budget, min_count)

    def groups(self, memory_budget: int) -> list[tuple[int, int]]:
        """Partitions ``[first, stop)`` read together: consecutive ones that fit in an
        eighth of the budget, or a larger one alone.  Each group can be reduced on its
        own (:meth:`reduce_group`), in any process."""
        bounds = self._all_bounds()
        part_bytes = np.diff(bounds, axis=1).sum(axis=0) * _RECORD.itemsize
        return list(_groups(part_bytes, min(memory_budget // 8, _GROUP_BYTES)))

    def reduce_group(self, first: int, stop: int, memory_budget: int,
                     min_count: int = 1) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """:meth:`reduce_partitions` of the partitions ``[first, stop)`` only."""
        for p, segments in self._partitions(first, stop):
            records = _Records(self.directory / f"part-{p:04d}", segments)
            for keys, totals in _reduce_file(records, memory_budget, min_count, level=1,
                                             bits=_FANOUT_BITS, first_bits=self.bits):
                yield p, keys, totals

    def _all_bounds(self) -> np.ndarray:
        """Every run's partition bounds, one row a run (read once while no run is added)."""
        if self._bounds_of[0] != self.n_runs:
            bounds = [self._bounds(self.run_path(k)) for k in range(self.n_runs)]
            self._bounds_of = (self.n_runs, np.array(bounds, dtype=np.int64).reshape(
                self.n_runs, self.n_parts + 1))
        return self._bounds_of[1]

    def _partitions(self, first: int, stop: int) -> Iterator[tuple[int, tuple[
            np.ndarray | _FileRange, ...]]]:
        """The records of every non-empty partition of a group: several partitions read
        at once (one open per run), a single one as file ranges (that
        :func:`_reduce_file` reads piece by piece if it must)."""
        runs = [self.run_path(k) for k in range(self.n_runs)]
        bounds = self._all_bounds()
        header = (self.n_parts + 1) * _BOUND.itemsize
        if stop - first == 1:
            segments = tuple(_FileRange(path, header + int(b[first]) * _RECORD.itemsize,
                                        int(b[stop] - b[first]))
                             for path, b in zip(runs, bounds, strict=True)
                             if b[stop] > b[first])
            if segments:
                yield first, segments
            return
        held, starts = _read_group(runs, bounds[:, first:stop + 1], header)
        for i in range(stop - first):
            if starts[i + 1] > starts[i]:
                yield first + i, (held[starts[i]:starts[i + 1]],)

    def _bounds(self, path: Path) -> np.ndarray:
        """A run's partition bounds, checked against the size of its file."""
        bounds = np.fromfile(path, dtype=_BOUND, count=self.n_parts + 1)
        header = (self.n_parts + 1) * _BOUND.itemsize
        if (len(bounds) != self.n_parts + 1 or bounds[0] != 0 or np.any(np.diff(bounds) < 0)
                or path.stat().st_size != header + int(bounds[-1]) * _RECORD.itemsize):
            raise _damaged(path, f"this run of counts does not hold {self.n_parts} "
                                 "partitions of records")
        return bounds


def _read_group(runs: list[Path], bounds: np.ndarray, header: int) -> tuple[
        np.ndarray, np.ndarray]:
    """The records of consecutive partitions of every run (``bounds``: theirs in each
    run), in one array grouped by partition, and where each partition starts in it."""
    rows = np.diff(bounds, axis=1)
    starts = np.concatenate([[0], np.cumsum(rows.sum(axis=0))])
    held = np.empty(int(starts[-1]), dtype=_RECORD)
    raw, at = held.view(np.uint8), starts[:-1].copy()
    for path, b, n in zip(runs, bounds, rows, strict=True):
        fd = os.open(path, os.O_RDONLY)
        try:
            for i in np.flatnonzero(n):  # straight into place: no second copy
                buf = raw[at[i] * _RECORD.itemsize:(at[i] + n[i]) * _RECORD.itemsize]
                if pread_into(fd, buf, header + int(b[i]) * _RECORD.itemsize) != len(buf):
                    raise _damaged(path, "a partition is cut short")
                at[i] += n[i]
        finally:
            os.close(fd)
    return held, starts


def _groups(sizes: np.ndarray, limit: int) -> Iterator[tuple[int, int]]:
    """Runs ``[first, stop)`` of consecutive sizes: as many as fit in ``limit`` together,
    or a single one (whatever its size)."""
    first = 0
    while first < len(sizes):
        stop = first + 1
        total = sizes[first]
        while stop < len(sizes) and total + sizes[stop] <= limit:
            total += sizes[stop]
            stop += 1
        yield first, stop
        first = stop


def _reduce_file(records: _Records, budget: int, min_count: int, level: int, bits: int,
                 first_bits: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    # argsort plus gathered copies need about four times the records in memory
    if records.nbytes * 4 <= budget or level * bits + first_bits + bits > 60:
        held = records.read()
        keys, totals = sum_counts(held["key"], held["count"])
        keep = totals >= min_count
        yield keys[keep], totals[keep]
        return
    n_parts = 1 << bits
    stem = records.stem
    sub_paths = [stem.with_name(f"{stem.name}.{level}-{p:02d}") for p in range(n_parts)]
    for p in sub_paths:
        p.unlink(missing_ok=True)
    for piece in records.pieces(max(1, budget // (4 * _RECORD.itemsize))):
        _scatter(piece, _partition(piece["key"] * _MIX, level, bits), n_parts, sub_paths)
    for sub in sub_paths:
        if sub.exists():
            yield from _reduce_file(_Records.of_file(sub), budget, min_count, level + 1, bits,
                                    first_bits)
            sub.unlink()
