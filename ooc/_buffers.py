"""Batch buffers placed so that neither the kernel nor TensorFlow copies slowly.

Two facts, both measured on this project's machine (``tools/bench_read.py``):

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
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

PAGE_BYTES = 4096
ALIGN_BYTES = 64
SMALL_BYTES = 16 * 1024  # below this, a copy costs less than placing the buffer


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
    alloc = np.zeros if zeros else np.empty
    if nbytes < SMALL_BYTES:
        return alloc(shape, dtype=dtype)
    raw = alloc(nbytes + PAGE_BYTES, dtype=np.uint8)
    skip = (page_offset - _address(raw)) % PAGE_BYTES
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


def empty_for_read(shape: tuple[int, ...], dtype: np.dtype, file_offset: int) -> np.ndarray:
    """An uninitialised array to ``preadv`` the bytes at ``file_offset`` into."""
    return aligned_empty(shape, dtype, file_offset % PAGE_BYTES & -ALIGN_BYTES)
