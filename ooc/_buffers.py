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
  :class:`BufferPool` once nothing refers to them any more (where a forked
  child can be kept from sharing them: ``_platform.FORK_HOOK``).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import weakref
from typing import Any

import numpy as np

from ._platform import FORK_HOOK

PAGE_BYTES = 4096
ALIGN_BYTES = 64
SMALL_BYTES = 16 * 1024  # below this, a copy costs less than placing the buffer
POOL_BUFFERS = 16  # buffers a pool keeps, in use or free
POOL_BYTES = 256 << 20  # and their bytes at most


class BufferPool:
    """Large byte buffers, handed out again once nothing refers to them.

    Every hand-out wraps the pooled memory in a new owner object (a ctypes
    array over it) that every array built on it keeps alive: NumPy views,
    slices, reshapes and tensors made from them hold the owner through
    their ``base``.  A buffer is free once its last owner is gone, which a
    weak reference tells, so a buffer is never handed out while anything
    can still reach it, whatever the interpreter's reference counts say.
    The weak references have no callback: Python code run when an array
    dies could swallow a Ctrl-C ("Exception ignored in ...").  Sizes are
    rounded up to one of eight classes per power of two, so batches of
    varying size (sparse ones) share buffers.  Keeps at most
    ``POOL_BUFFERS`` buffers and ``POOL_BYTES`` bytes, in use or free;
    beyond that, memory is allocated as usual.  A forked child starts with
    an empty pool.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[int, list[_Slot]] = {}  # size class -> its buffers, in use or free
        self.taken = self.reused = 0  # hand-outs, and those of a free buffer

    def take(self, nbytes: int, zeros: bool) -> tuple[Any, int, bool]:
        """Memory for at least ``nbytes`` bytes: ``(buffer, address, fresh)``.

        Build arrays on ``buffer`` (``np.ndarray(..., buffer=buffer)``); the
        memory is pooled again once ``buffer`` and every array on it are
        gone.  A ``fresh`` buffer was just allocated, zeroed if ``zeros``; a
        reused one holds what its last user left.
        """
        size = size_class(nbytes)
        with self._lock:
            self.taken += 1
            slot = next((s for s in self._slots.get(size, ()) if s.is_free()), None)
            fresh = slot is None
            if slot is None:
                slot = self._new_slot(size, zeros)
                if slot is None:  # the pool is full
                    memory = (np.zeros if zeros else np.empty)(nbytes, dtype=np.uint8)
                    return memory, _address(memory), True
            else:
                self.reused += 1
            owner = _owner_type(size).from_buffer(slot.memory)
            slot.claim = weakref.ref(owner)
        return owner, slot.address, fresh

    def clear(self) -> None:
        """Forget every buffer (those in use stay valid for their holders)."""
        with self._lock:
            self._slots = {}

    def _new_slot(self, size: int, zeros: bool) -> _Slot | None:
        """A new pooled buffer of ``size`` bytes, or None where the pool is full."""
        if not self._make_room(size):
            return None
        slot = _Slot((np.zeros if zeros else np.empty)(size, dtype=np.uint8))
        self._slots.setdefault(size, []).append(slot)
        return slot

    def _make_room(self, size: int) -> bool:
        """Drop free buffers of other sizes until ``size`` more bytes fit, if they can."""
        for other in [s for s in self._slots if s != size]:
            if self._room_for(size):
                break
            kept = [slot for slot in self._slots[other] if not slot.is_free()]
            if kept:
                self._slots[other] = kept
            else:
                del self._slots[other]
        return self._room_for(size)

    def _room_for(self, size: int) -> bool:
        return (self._n_buffers() < POOL_BUFFERS
                and self._pooled_bytes() + size <= POOL_BYTES)

    def _n_buffers(self) -> int:
        return sum(len(slots) for slots in self._slots.values())

    def _pooled_bytes(self) -> int:
        return sum(size * len(slots) for size, slots in self._slots.items())


class _Slot:
    """One pooled buffer, its first byte's address, and its current hand-out's owner."""

    __slots__ = ("address", "claim", "memory")

    def __init__(self, memory: np.ndarray) -> None:
        self.memory, self.address = memory, _address(memory)
        self.claim: weakref.ref[Any] | None = None

    def is_free(self) -> bool:
        """Whether the last owner, and with it every array on this memory, is gone."""
        return self.claim is None or self.claim() is None


def size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to one of eight sizes per power of two (at most 1/8 more)."""
    step = 1 << max(nbytes.bit_length() - 4, 0)
    return -(-nbytes // step) * step


@functools.cache
def _owner_type(size: int) -> Any:
    return ctypes.c_char * size


def _address(array: np.ndarray) -> int:
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # 4x faster than .ctypes
    except ValueError:  # a dtype the buffer protocol cannot express, e.g. '<f16'
        return array.ctypes.data


# a forked child must not hand out its parent's buffers: no pool where it cannot be emptied
_POOL: BufferPool | None = BufferPool() if FORK_HOOK else None
if FORK_HOOK:
    os.register_at_fork(after_in_child=lambda: _POOL.clear())  # type: ignore[union-attr]


def _memory(nbytes: int, zeros: bool) -> tuple[Any, int, bool]:
    """``BufferPool.take`` of the process' pool, or new memory where there is none."""
    if _POOL is not None:
        return _POOL.take(nbytes, zeros)
    memory = (np.zeros if zeros else np.empty)(nbytes, dtype=np.uint8)
    return memory, _address(memory), True


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
    memory, address, fresh = _memory(nbytes + PAGE_BYTES, zeros)
    offset = (page_offset - address) % PAGE_BYTES
    if zeros and not fresh:
        ctypes.memset(address + offset, 0, nbytes)  # C's memset: NumPy's fill is slower
    return np.ndarray(shape, dtype, memory, offset)


def empty_for_read(shape: tuple[int, ...], dtype: np.dtype, file_offset: int) -> np.ndarray:
    """An uninitialised array to ``preadv`` the bytes at ``file_offset`` into."""
    return aligned_empty(shape, dtype, file_offset % PAGE_BYTES & -ALIGN_BYTES)
