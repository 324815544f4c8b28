"""Compiled inner loops of ``ooc preprocess``, with NumPy fallbacks.

Where ``numba`` is installed (``pip install 'ooc[numba]'``; see
:func:`ooc._platform.numba`), the loops below are compiled once per machine
(cached on disk) and run per element in one pass; elsewhere, and under
``OOC_PORTABLE=1``, the vectorised NumPy versions in :mod:`ooc.text.ngrams`
and :mod:`ooc.text.hashindex` run instead.  numba is optional because its
wheels follow new CPython releases by some months.  Both give the same
arrays, element for element (``tests/test_kernels.py`` checks each pair).

The kernels here take and return plain arrays; callers choose with
:func:`compiled`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import _platform


@functools.cache
def _jit() -> Any:
    import numba

    return functools.partial(numba.njit, cache=True, nogil=True)


def compiled() -> bool:
    """Whether the compiled kernels run here."""
    return _platform.numba()


@functools.cache
def _kernels() -> dict[str, Any]:
    """Compile (or load from the on-disk cache) every kernel, once per process."""
    jit = _jit()

    @jit
    def term_counts(ids: np.ndarray, offsets: np.ndarray, lo: int, hi: int, bits: int,
                    rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # each document's n-gram keys made in a buffer, sorted and counted
        n_docs = len(offsets) - 1
        total, longest = 0, 0
        for d in range(n_docs):
            if len(rows) and not rows[d]:
                continue
            length = offsets[d + 1] - offsets[d]
            longest = max(longest, length)
            for n in range(lo, hi + 1):
                total += max(0, length - n + 1)
        out_doc = np.empty(total, np.int32)
        out_key = np.empty(total, np.uint64)
        out_count = np.empty(total, np.int64)
        buf = np.empty(longest * (hi - lo + 1), np.uint64)
        shift = np.uint64(bits)
        k = 0
        for d in range(n_docs):
            if len(rows) and not rows[d]:
                continue
            a, b = offsets[d], offsets[d + 1]
            m = 0
            for n in range(lo, hi + 1):
                for p in range(a, b - n + 1):
                    key = np.uint64(0)
                    for j in range(n):
                        t = ids[p + j]
                        if t < 0:  # an unknown token: no n-gram through it
                            break
                        key = (key << shift) | np.uint64(t + 1)
                    else:
                        buf[m] = key
                        m += 1
            part = buf[:m]
            part.sort()
            i = 0
            while i < m:
                j = i + 1
                while j < m and part[j] == part[i]:
                    j += 1
                out_doc[k], out_key[k], out_count[k] = d, part[i], j - i
                k += 1
                i = j
        return out_doc[:k], out_key[:k], out_count[:k]

    @jit
    def run_lengths(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.empty(len(sorted_values), sorted_values.dtype)
        counts = np.empty(len(sorted_values), np.int64)
        n, i = 0, 0
        while i < len(sorted_values):
            j = i + 1
            while j < len(sorted_values) and sorted_values[j] == sorted_values[i]:
                j += 1
            values[n], counts[n] = sorted_values[i], j - i
            n += 1
            i = j
        return values[:n], counts[:n]

    @jit
    def splitmix64(z: np.uint64) -> np.uint64:
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    @jit
    def lookup(slots_keys: np.ndarray, slots_values: np.ndarray, queries: np.ndarray,
               bits: int) -> np.ndarray:
        mask = np.uint64((1 << bits) - 1)
        shift = np.uint64(64 - bits)
        out = np.empty(len(queries), np.int64)
        for i in range(len(queries)):
            q = queries[i]
            s = splitmix64(q) >> shift
            out[i] = -1
            while True:
                found = slots_keys[s]
                if found == q:
                    out[i] = slots_values[s]
                    break
                if found == 0:
                    break
                s = (s + np.uint64(1)) & mask
        return out

    @jit
    def add_squares(sums: np.ndarray, sumsq: np.ndarray, at: np.ndarray,
                    values: np.ndarray) -> None:
        for i in range(len(at)):  # one addition at a time, in the entries' order
            v = values[i]
            sums[at[i]] += v
            sumsq[at[i]] += v * v

    @jit
    def group_order(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        bounds = np.zeros(n_groups + 1, np.int64)
        for g in groups:
            bounds[g + 1] += 1
        for g in range(n_groups):
            bounds[g + 1] += bounds[g]
        fill = bounds[:-1].copy()
        order = np.empty(len(groups), np.int64)
        for i in range(len(groups)):  # a stable counting sort
            order[fill[groups[i]]] = i
            fill[groups[i]] += 1
        return order, bounds

    @jit
    def encode_runs(data: np.ndarray, starts: np.ndarray,
                    stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # open addressing over the distinct strings only, doubled at half full,
        # so that the table stays in cache (sized for every token it did not)
        n = len(starts)
        bits = 10
        slots = np.full(1 << bits, -1, np.int64)
        ids = np.empty(n, np.int64)
        firsts = np.empty(n, np.int64)
        hashes = np.empty(n, np.uint64)
        n_ids = 0
        for i in range(n):
            a, b = starts[i], stops[i]
            h = np.uint64(0xCBF29CE484222325)  # FNV-1a
            for j in range(a, b):
                h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
            h = splitmix64(h)
            mask = np.uint64((1 << bits) - 1)
            s = h & mask
            while True:
                k = slots[s]
                if k < 0:
                    slots[s] = n_ids
                    firsts[n_ids], hashes[n_ids], ids[i] = i, h, n_ids
                    n_ids += 1
                    break
                if hashes[k] == h:
                    f = firsts[k]
                    same = stops[f] - starts[f] == b - a
                    j = 0
                    while same and j < b - a:
                        same = data[starts[f] + j] == data[a + j]
                        j += 1
                    if same:
                        ids[i] = k
                        break
                s = (s + np.uint64(1)) & mask
            if 2 * n_ids > (1 << bits):
                bits += 1
                mask = np.uint64((1 << bits) - 1)
                slots = np.full(1 << bits, -1, np.int64)
                for k in range(n_ids):
                    s = hashes[k] & mask
                    while slots[s] >= 0:
                        s = (s + np.uint64(1)) & mask
                    slots[s] = k
        return ids, firsts[:n_ids]

    return {"term_counts": term_counts, "run_lengths": run_lengths, "lookup": lookup,
            "add_squares": add_squares, "group_order": group_order,
            "encode_runs": encode_runs}


def warm_up() -> None:
    """Compile or load the kernels now (before forking workers, which then share them)."""
    if compiled():
        kernels = _kernels()
        empty = np.zeros(0, np.uint64)
        kernels["term_counts"](np.zeros(0, np.int64), np.zeros(1, np.int64), 1, 2, 25,
                               np.zeros(0, bool))
        kernels["run_lengths"](empty)
        kernels["lookup"](np.zeros(16, np.uint64), np.zeros(16, np.int64), empty, 4)
        kernels["add_squares"](np.zeros(1), np.zeros(1), np.zeros(0, np.int64), np.zeros(0))
        kernels["group_order"](np.zeros(0, np.int64), 1)
        kernels["encode_runs"](np.zeros(0, np.uint8), np.zeros(0, np.int64),
                               np.zeros(0, np.int64))


def term_counts(ids: np.ndarray, offsets: np.ndarray, ngram_range: tuple[int, int], bits: int,
                rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compiled :func:`ooc.text.ngrams.term_counts`."""
    return _kernels()["term_counts"](
        np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(offsets, np.int64),
        ngram_range[0], ngram_range[1], bits,
        np.zeros(0, bool) if rows is None else np.ascontiguousarray(rows, bool))


def run_lengths(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compiled: distinct values of a sorted array and how often each occurs."""
    return _kernels()["run_lengths"](np.ascontiguousarray(sorted_values))


def lookup(slots_keys: np.ndarray, slots_values: np.ndarray, queries: np.ndarray,
           bits: int) -> np.ndarray:
    """Compiled :meth:`ooc.text.hashindex.HashIndex.lookup`."""
    return _kernels()["lookup"](slots_keys, slots_values,
                                np.ascontiguousarray(queries, np.uint64), bits)


def add_squares(sums: np.ndarray, sumsq: np.ndarray, at: np.ndarray, values: np.ndarray) -> None:
    """``sums[at] += values`` and ``sumsq[at] += values**2``, one entry at a time in order
    (``np.add.at``'s order, so the same floats)."""
    if compiled():
        _kernels()["add_squares"](sums, sumsq, np.ascontiguousarray(at, np.int64),
                                  np.ascontiguousarray(values, np.float64))
    else:
        np.add.at(sums, at, values)
        np.add.at(sumsq, at, values * values)


def group_order(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices that sort ``groups`` (ints in ``[0, n_groups)``) stably, and where each
    group starts in that order (``n_groups + 1`` bounds)."""
    if compiled():
        return _kernels()["group_order"](np.ascontiguousarray(groups, np.int64), n_groups)
    order = np.argsort(groups, kind="stable")
    return order, np.searchsorted(groups[order], np.arange(n_groups + 1))


def encode_runs(data: np.ndarray, starts: np.ndarray,
                stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compiled dictionary encoding of the byte strings ``data[starts[i]:stops[i]]``:
    each string's id (ids in order of first appearance) and where each id first occurs."""
    return _kernels()["encode_runs"](np.ascontiguousarray(data, np.uint8),
                                     np.ascontiguousarray(starts, np.int64),
                                     np.ascontiguousarray(stops, np.int64))
