"""Reading stored bytes: one descriptor per file and process, explicit ``preadv``.

Explicit reads keep resident memory at the size of the buffers read into,
however much of the file is visited.  The kernel's copy out of the page
cache is the ceiling of this design: on this project's machine a bare
``preadv`` of 1 MB ran at 0.87-0.98x the speed of ``memcpy`` from memory
(``tools/bench_read.py``, table 1b); copies out of a memory map, kept or
released after each batch, measured no faster in the benchmark's order and
let resident memory grow when kept (docs/BENCHMARKS.md, section 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from .._buffers import empty_for_read
from ..errors import ChecksumError


class PerProcessFile:
    """An OS file descriptor opened lazily, once per process; reads with ``preadv``.

    A descriptor inherited through ``fork`` is never used: a child opens its
    own.  Pickles as the path alone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = -1

    def fd(self) -> int:
        """Return this process's descriptor, opening it if needed."""
        if self._pid != os.getpid() or self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def read_into(self, buf: np.ndarray, offset: int) -> None:
        """Fill ``buf`` (C-contiguous) with the bytes at ``offset``."""
        fd = self._fd if self._pid == os.getpid() and self._fd is not None else self.fd()
        done = os.preadv(fd, [buf], offset)
        if done < buf.nbytes:
            self._read_rest(fd, memoryview(buf.reshape(-1).view(np.uint8)), offset, done)

    def _read_rest(self, fd: int, view: memoryview, offset: int, done: int) -> None:
        """After a short read: go on, or fail if the file ended early."""
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                raise ChecksumError(
                    f"{self.path}: file ends at byte {offset + done}, before the "
                    f"{len(view)} bytes expected at offset {offset}. The file was "
                    "truncated; write the dataset again.")
            done += n

    def crc32c(self, offset: int, length: int) -> int:
        """CRC-32C of ``length`` bytes at ``offset``."""
        buf = empty_for_read((length,), np.dtype(np.uint8), offset)
        self.read_into(buf, offset)
        return crc32c.crc32c(buf)

    def close(self) -> None:
        """Close the descriptor if this process opened it."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_fd": None, "_pid": -1}
