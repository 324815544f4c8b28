"""Batch buffers placed so that neither the kernel nor TensorFlow copies slowly.

Three facts, all measured on this project's machine (``tools/bench_read.py``):

* TensorFlow wraps a NumPy array without copying it when the data starts on
  a 64-byte boundary; otherwise it copies (measured: 13 ms against 1.6 ms
  for an 8 MB batch through ``tf.data.Dataset.from_generator``, which is how
  Keras feeds a ``PyDataset``).  ``malloc`` aligns large blocks to 16 bytes
  only, so every batch that ooc allocates starts on a 64-byte boundary.
* The kernel copies from the page cache with ``rep movsb``, which on some
  CPUs (measured: AMD EPYC) runs 4-5x slower when the destination sits 1-31
  bytes past the source modulo 4 KiB.  A buffer for a file read therefore
  starts at the same offset within a page as the file bytes, rounded down
  to 64 bytes, never in that window.
* Fresh memory costs a page fault per 4 KiB on first write.  TensorFlow sets
  glibc's trim threshold, so once it is imported every large block freed is
  handed back to the kernel and the next batch faults its pages in again:
  252 faults and about 1 ms per 1 MB batch fed through ``fit``, more than
  the read itself.  Large buffers are therefore recycled by
  :class:`BufferPool` once nothing refers to them any more.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
from typing import Any

import numpy as np

from ._platform import FORK_HOOK

PAGE_BYTES = 4096
ALIGN_BYTES = 64
SMALL_BYTES = 16 * 1024  # below this, a copy costs less than placing the buffer
POOL_BUFFERS = 16  # buffers a pool keeps, in use or free
POOL_BYTES = 256 << 20  # and their bytes at most


class BufferPool:
    """Large byte buffers, handed out again once no array refers to them.

    A buffer is free when the pool holds the only reference to it: every
    NumPy view of it (a batch, a slice of a batch, a tensor wrapping a batch
    without a copy) keeps it alive and so keeps it out of reuse.  Keeps at
    most ``POOL_BUFFERS`` buffers and ``POOL_BYTES`` bytes; beyond that,
    buffers are allocated as usual.  A forked child starts with an empty pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_size: dict[int, list[_Entry]] = {}
        # what getrefcount reports for a buffer only its entry refers to
        # (2 up to Python 3.13); probed, not assumed
        self._free_refs = _refs((np.empty(0), 0))

    def take(self, nbytes: int, zeros: bool) -> _Entry:
        """A uint8 buffer of ``nbytes`` and its address, zeroed if ``zeros``."""
        with self._lock:
            for entry in self._by_size.get(nbytes, ()):
                if _refs(entry) == self._free_refs:
                    if zeros:
                        entry[0].fill(0)
                    return entry
            buf = (np.zeros if zeros else np.empty)(nbytes, dtype=np.uint8)
            entry = (buf, _address(buf))
            if self._make_room(nbytes):
                self._by_size.setdefault(nbytes, []).append(entry)
            return entry

    def clear(self) -> None:
        """Forget every buffer (those in use stay valid for their holders)."""
        with self._lock:
            self._by_size = {}

    def _make_room(self, nbytes: int) -> bool:
        """Drop free buffers of other sizes until ``nbytes`` more fit, if they can."""
        for size in [s for s in self._by_size if s != nbytes]:
            if self._room_for(nbytes):
                break
            kept = [e for e in self._by_size[size] if _refs(e) != self._free_refs]
            if kept:
                self._by_size[size] = kept
            else:
                del self._by_size[size]
        return self._room_for(nbytes)

    def _room_for(self, nbytes: int) -> bool:
        return (self._n_buffers() < POOL_BUFFERS
                and self._pooled_bytes() + nbytes <= POOL_BYTES)

    def _n_buffers(self) -> int:
        return sum(len(entries) for entries in self._by_size.values())

    def _pooled_bytes(self) -> int:
        return sum(size * len(entries) for size, entries in self._by_size.items())


_Entry = tuple[np.ndarray, int]  # a pooled buffer and the address of its first byte


def _refs(entry: _Entry) -> int:
    """References to a pooled buffer, counted the same way for the probe and the test."""
    return sys.getrefcount(entry[0])


def _address(array: np.ndarray) -> int:
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # 4x faster than .ctypes
    except ValueError:  # a dtype the buffer protocol cannot express, e.g. '<f16'
        return array.ctypes.data


_POOL = BufferPool()
if FORK_HOOK:
    os.register_at_fork(after_in_child=lambda: _POOL.clear())


def aligned_empty(shape: tuple[int, ...], dtype: Any, page_offset: int = 0,
                  zeros: bool = False) -> np.ndarray:
    """A C-contiguous array starting ``page_offset`` (a multiple of 64) into a page.

    Uninitialised unless ``zeros``; arrays under ``SMALL_BYTES`` come from
    ``np.empty``/``np.zeros`` as usual.
    """
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < SMALL_BYTES:
        return (np.zeros if zeros else np.empty)(shape, dtype=dtype)
    raw, address = _POOL.take(nbytes + PAGE_BYTES, zeros)
    return np.ndarray(shape, dtype, raw, (page_offset - address) % PAGE_BYTES)


def empty_for_read(shape: tuple[int, ...], dtype: np.dtype, file_offset: int) -> np.ndarray:
    """An uninitialised array to ``preadv`` the bytes at ``file_offset`` into."""
    return aligned_empty(shape, dtype, file_offset % PAGE_BYTES & -ALIGN_BYTES)
