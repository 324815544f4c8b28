"""A vectorised open-addressing hash index from uint64 keys to their positions.

Looking up the n-grams of a chunk in a vocabulary of millions of sorted
keys with ``np.searchsorted`` costs a cache miss per bisection step; this
index needs about one probe per key (load factor at most 1/2, linear
probing).  Key 0 marks an empty slot, which is why n-gram keys are never 0.
Both arrays can be saved and memory-mapped, so worker processes share one
copy through the page cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._hash import splitmix64
from . import kernels


@dataclass(frozen=True)
class HashIndex:
    """``slots_keys[s]`` holds a key (0: empty) whose position is ``slots_values[s]``."""

    slots_keys: np.ndarray
    slots_values: np.ndarray

    @property
    def bits(self) -> int:
        """log2 of the number of slots."""
        return len(self.slots_keys).bit_length() - 1

    @classmethod
    def build(cls, keys: np.ndarray) -> HashIndex:
        """Index the distinct, non-zero ``keys`` by position."""
        bits = max(4, int(2 * len(keys)).bit_length())
        if kernels.compiled():
            return cls(*kernels.build_index(keys, bits))
        table = np.zeros(1 << bits, dtype=np.uint64)
        values = np.full(1 << bits, -1, dtype=np.int64)
        slot = _home(keys, bits)
        pending = np.arange(len(keys))
        mask = np.uint64((1 << bits) - 1)
        while len(pending):
            s = slot[pending]
            free = np.flatnonzero(table[s] == 0)
            table[s[free]] = keys[pending[free]]  # several may race for a slot; one wins
            won = free[table[s[free]] == keys[pending[free]]]
            values[s[won]] = pending[won]
            placed = np.zeros(len(pending), dtype=bool)
            placed[won] = True
            pending = pending[~placed]
            slot[pending] = (slot[pending] + np.uint64(1)) & mask
        return cls(table, values)

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """Position of every query key, -1 where absent."""
        bits = self.bits
        if kernels.compiled():
            return kernels.lookup(self.slots_keys, self.slots_values, queries, bits)
        mask = np.uint64((1 << bits) - 1)
        slot = _home(queries, bits)
        out = np.full(len(queries), -1, dtype=np.int64)
        pending = np.arange(len(queries))
        while len(pending):
            s = slot[pending]
            found = self.slots_keys[s]
            hit = found == queries[pending]
            out[pending[hit]] = self.slots_values[s[hit]]
            go_on = ~hit & (found != 0)
            pending = pending[go_on]
            slot[pending] = (s[go_on] + np.uint64(1)) & mask
        return out


def _home(keys: np.ndarray, bits: int) -> np.ndarray:
    """First slot of every key: the top bits of a full 64-bit mix of it.

    A plain multiplicative hash is not enough: the keys of one vocabulary
    shard share the top bits of ``key * 0x9E37...`` (that is how the count
    partitions, and so the shards, are chosen), and would pile into one
    corner of the table.
    """
    return splitmix64(keys, 0) >> np.uint64(64 - bits)
