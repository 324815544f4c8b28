"""A seeded 64-bit hash of integer arrays, shared by the split, the shuffle and the
vocabulary hash index."""

from __future__ import annotations

import numpy as np

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each value (SplitMix64's finaliser)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(seed & (2**64 - 1)) * np.uint64(
            0x9E3779B97F4A7C15) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def uniform(values: np.ndarray, seed: int) -> np.ndarray:
    """A seeded, stable uniform number in [0, 1) for each value."""
    return (splitmix64(values, seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
