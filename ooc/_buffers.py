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
import os
import sys
import threading
from typing import Any

import numpy as np

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
        self._buffers: list[np.ndarray] = []
        self._pid = os.getpid()
        # what getrefcount reports for a buffer only the list refers to (2 up
        # to Python 3.13: the list and the argument); probed, not assumed
        probe = [np.empty(0)]
        self._free_refs = sys.getrefcount(probe[0])

    def take(self, nbytes: int, zeros: bool) -> np.ndarray:
        """A uint8 buffer of ``nbytes``, zeroed if ``zeros``."""
        with self._lock:
            if self._pid != os.getpid():
                self._buffers, self._pid = [], os.getpid()
            free = [i for i in range(len(self._buffers))
                    if sys.getrefcount(self._buffers[i]) == self._free_refs]
            for i in free:
                if len(self._buffers[i]) == nbytes:
                    buf = self._buffers[i]
                    if zeros:
                        buf.fill(0)
                    return buf
            buf = (np.zeros if zeros else np.empty)(nbytes, dtype=np.uint8)
            for i in reversed(free):  # make room: drop free buffers of other sizes
                if self._room_for(nbytes):
                    break
                del self._buffers[i]
            if self._room_for(nbytes):
                self._buffers.append(buf)
            return buf

    def _room_for(self, nbytes: int) -> bool:
        return (len(self._buffers) < POOL_BUFFERS
                and self._pooled_bytes() + nbytes <= POOL_BYTES)

    def _pooled_bytes(self) -> int:
        return sum(len(buf) for buf in self._buffers)


_POOL = BufferPool()


def _address(array: np.ndarray) -> int:
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # 4x faster than .ctypes
    except ValueError:  # a dtype the buffer protocol cannot express, e.g. '<f16'
        return array.ctypes.data


def aligned_empty(shape: tuple[int, ...], dtype: Any, page_offset: int = 0,
                  zeros: bool = False) -> np.ndarray:
    """A C-contiguous array starting ``page_offset`` (a multiple of 64) into a page.

    Uninitialised unless ``zeros``; arrays under ``SMALL_BYTES`` come from
    ``np.empty``/``np.zeros`` as usual.
    """
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if nbytes < SMALL_BYTES:
        return (np.zeros if zeros else np.empty)(shape, dtype=dtype)
    raw = _POOL.take(nbytes + PAGE_BYTES, zeros)
    skip = (page_offset - _address(raw)) % PAGE_BYTES
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


def empty_for_read(shape: tuple[int, ...], dtype: np.dtype, file_offset: int) -> np.ndarray:
    """An uninitialised array to ``preadv`` the bytes at ``file_offset`` into."""
    return aligned_empty(shape, dtype, file_offset % PAGE_BYTES & -ALIGN_BYTES)
