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
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _platform

if TYPE_CHECKING:
    from .hashindex import HashIndex


def compiled() -> bool:
    """Whether the compiled kernels run here."""
    return _platform.numba()


@functools.cache
def _kernels() -> Any:
    """The compiled kernels' module (numba loads them from its on-disk cache)."""
    from . import _numba_kernels

    return _numba_kernels


def warm_up() -> None:
    """Compile or load the kernels now (before forking workers, which then share them)."""
    if compiled():
        kernels = _kernels()
        empty = np.zeros(0, np.uint64)
        kernels.term_counts(np.zeros(0, np.int64), np.zeros(1, np.int64), 1, 2, 25,
                            np.zeros(0, bool))
        kernels.run_lengths(empty)
        kernels.build_index(empty, 4)
        kernels.partitions(empty, np.uint64(1), np.uint64(56), np.uint64(255))
        kernels.doc_distinct_keys(np.zeros(0, np.int64), np.zeros(1, np.int64), 1, 2, 25,
                                  np.zeros(0, bool))
        kernels.lookup(np.zeros(16, np.uint64), np.zeros(16, np.int64), empty, 4)
        kernels.indexed_term_counts(np.zeros(0, np.int64), np.zeros(1, np.int64), 1, 2, 25,
                                    np.zeros(16, np.uint64), np.zeros(16, np.int64), 4)
        kernels.add_squares(np.zeros(1), np.zeros(1), np.zeros(0, np.int64), np.zeros(0))
        kernels.group_order(np.zeros(0, np.int64), 1)
        kernels.encode_runs(np.zeros(0, np.uint8), np.zeros(0, np.int64),
                            np.zeros(0, np.int64))
        kernels.remap_keys(empty, np.zeros(0, np.int64), 25)
        kernels.hash_words(np.zeros(0, np.uint8), np.zeros(1, np.int64))
        kernels.table_add(kernels.table_slots(empty, 0, 4), 4, np.zeros(1, np.uint64),
                          np.zeros(1, np.uint8), np.zeros(2, np.int64), 0,
                          np.zeros(0, np.uint8), np.zeros(1, np.int64), empty, True)
        kernels.sum_by_key(empty, np.zeros(0, np.int64), 1)
        kernels.token_runs(np.zeros(0, np.uint8), np.zeros(128, bool), np.zeros(0, bool), 1)


def term_counts(ids: np.ndarray, offsets: np.ndarray, ngram_range: tuple[int, int], bits: int,
                rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compiled :func:`ooc.text.ngrams.term_counts`."""
    return _kernels().term_counts(
        np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(offsets, np.int64),
        ngram_range[0], ngram_range[1], bits,
        np.zeros(0, bool) if rows is None else np.ascontiguousarray(rows, bool))


def doc_distinct_keys(ids: np.ndarray, offsets: np.ndarray, ngram_range: tuple[int, int],
                      bits: int, rows: np.ndarray | None) -> np.ndarray:
    """Compiled: each document's distinct n-gram keys (in order of first occurrence),
    document after document; only rows where ``rows`` when given."""
    return _kernels().doc_distinct_keys(
        np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(offsets, np.int64),
        ngram_range[0], ngram_range[1], bits,
        np.zeros(0, bool) if rows is None else np.ascontiguousarray(rows, bool))


def run_lengths(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compiled: distinct values of a sorted array and how often each occurs."""
    return _kernels().run_lengths(np.ascontiguousarray(sorted_values))


def build_index(keys: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :meth:`ooc.text.hashindex.HashIndex.build`: keys inserted one by one."""
    return _kernels().build_index(np.ascontiguousarray(keys, np.uint64), bits)


def lookup(slots_keys: np.ndarray, slots_values: np.ndarray, queries: np.ndarray,
           bits: int) -> np.ndarray:
    """Compiled :meth:`ooc.text.hashindex.HashIndex.lookup`."""
    return _kernels().lookup(slots_keys, slots_values,
                                np.ascontiguousarray(queries, np.uint64), bits)


def indexed_term_counts(ids: np.ndarray, offsets: np.ndarray, ngram_range: tuple[int, int],
                        bits: int, slots_keys: np.ndarray, slots_values: np.ndarray,
                        index_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compiled :func:`ooc.text.ngrams.indexed_term_counts`."""
    return _kernels().indexed_term_counts(
        np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(offsets, np.int64),
        ngram_range[0], ngram_range[1], bits, slots_keys, slots_values, index_bits)


def shard_hits(keys: np.ndarray, tf: np.ndarray, rows: np.ndarray, train: np.ndarray,
               at: np.ndarray, index: HashIndex, idf: np.ndarray,
               squares: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Look up ``keys[at]`` in a vocabulary shard's ``index``: ``squares[i] = (tf[i] *
    idf[position]) ** 2`` for each hit ``i``, and ``(rows[i], position, tf[i])`` of the
    hits where ``train[i]``, in the order of ``at``."""
    if compiled():
        return _kernels().shard_hits(keys, tf, rows, train, np.ascontiguousarray(at, np.int64),
                                     index.slots_keys, index.slots_values, index.bits,
                                     np.asarray(idf), squares)
    pos = index.lookup(keys[at])
    hit = np.flatnonzero(pos >= 0)
    at, pos = at[hit], pos[hit]
    value = tf[at] * np.asarray(idf)[pos]
    squares[at] = value * value
    keep = train[at]
    return rows[at[keep]].astype(np.int32), pos[keep].astype(np.int32), tf[at[keep]]


def add_squares(sums: np.ndarray, sumsq: np.ndarray, at: np.ndarray, values: np.ndarray) -> None:
    """``sums[at] += values`` and ``sumsq[at] += values**2``, one entry at a time in order
    (``np.add.at``'s order, so the same floats)."""
    if compiled():
        _kernels().add_squares(sums, sumsq, np.ascontiguousarray(at, np.int64),
                               np.ascontiguousarray(values, np.float64))
    else:
        np.add.at(sums, at, values)
        np.add.at(sumsq, at, values * values)


def group_order(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices that sort ``groups`` (ints in ``[0, n_groups)``) stably, and where each
    group starts in that order (``n_groups + 1`` bounds)."""
    if compiled():
        return _kernels().group_order(np.ascontiguousarray(groups, np.int64), n_groups)
    order = np.argsort(groups, kind="stable")
    return order, np.searchsorted(groups[order], np.arange(n_groups + 1))


def encode_runs(data: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compiled dictionary encoding of the byte strings ``data[starts[i]:stops[i]]``:
    each string's id (ids in order of first appearance), where each id first occurs, and
    the distinct strings' hashes (:func:`hash_words`), bytes and offsets."""
    return _kernels().encode_runs(np.ascontiguousarray(data, np.uint8),
                                  np.ascontiguousarray(starts, np.int64),
                                  np.ascontiguousarray(stops, np.int64))


def hash_words(utf8: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Compiled: the 64-bit hash of every string ``utf8[offsets[i]:offsets[i + 1]]``."""
    return _kernels().hash_words(np.ascontiguousarray(utf8, np.uint8),
                                 np.ascontiguousarray(offsets, np.int64))


def table_slots(hashes: np.ndarray, n_words: int, bits: int) -> np.ndarray:
    """Compiled: the ``2 ** bits`` slots, ``(hash, id)`` pairs, of a word table."""
    return _kernels().table_slots(hashes, n_words, bits)


def table_add(slots: np.ndarray, bits: int, hashes: np.ndarray, arena: np.ndarray,
              word_at: np.ndarray, n_words: int, utf8: np.ndarray, offsets: np.ndarray,
              in_hashes: np.ndarray, insert: bool) -> tuple[np.ndarray, int]:
    """Compiled: the id of every word in a word table, new ones appended when ``insert``
    (in room the caller made), else -1; and the number of words now."""
    return _kernels().table_add(slots, bits, hashes, arena, word_at, n_words,
                                np.ascontiguousarray(utf8, np.uint8),
                                np.ascontiguousarray(offsets, np.int64),
                                np.ascontiguousarray(in_hashes, np.uint64), insert)


def partitions(keys: np.ndarray, mix: np.uint64, shift: np.uint64,
               mask: np.uint64) -> np.ndarray:
    """Compiled ``((keys * mix) >> shift) & mask`` (wrapping multiplication), as ``intp``."""
    return _kernels().partitions(np.ascontiguousarray(keys, np.uint64), mix, shift, mask)


def remap_keys(keys: np.ndarray, mapping: np.ndarray, bits: int) -> np.ndarray:
    """Compiled :meth:`ooc.text.ngrams.KeySpace.remap`."""
    return _kernels().remap_keys(np.ascontiguousarray(keys, np.uint64),
                                 np.ascontiguousarray(mapping, np.int64), bits)


def sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compiled: the distinct keys, in an order of the kernel's choosing (not sorted), and
    the sum of each one's counts."""
    part_bits = min(12, max(1, (len(keys) >> 11).bit_length()))  # about 2k keys a partition
    return _kernels().sum_by_key(np.ascontiguousarray(keys, np.uint64),
                                 np.ascontiguousarray(counts, np.int64), part_bits)


def token_runs(data: np.ndarray, value: np.ndarray, known: np.ndarray,
               min_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Compiled: byte ranges ``(starts, stops)`` of the runs of at least ``min_len``
    characters that ``value`` (indexed by code point) accepts in the UTF-8 ``data``, and
    how many characters met ``known`` does not cover (when ``known`` is not empty; the
    runs are then not to be trusted)."""
    return _kernels().token_runs(data, value, known, min_len)
