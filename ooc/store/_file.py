"""Reading stored bytes: explicit ``preadv`` copies, or views of a memory map.

Two ways to get rows out of a file, both keeping resident memory bounded:

* :meth:`PerProcessFile.read_into` copies them with ``preadv`` into a
  buffer the caller owns (one descriptor per file and process).  The
  kernel's copy out of the page cache is the ceiling of that way: on this
  project's machine a bare ``preadv`` of 1 MB ran at 0.87-0.98x the speed
  of ``memcpy`` from memory (``tools/bench_read.py``, table 1b), and a copy
  out of a memory map was no faster (docs/BENCHMARKS.md, section 1).
* :meth:`PerProcessFile.view` returns a read-only array over a shared,
  read-only memory map of the file: no copy at all, the batch *is* the page
  cache, which is how Arrow and Megatron-LM's indexed datasets hand out
  rows.  Mapped pages count as resident, so once views handed out could
  have mapped ``VIEW_RELEASE_BYTES`` (counted in the huge page-cache
  folios, 2 MiB, that Linux may map at once), the map's page-table entries are dropped
  (``MADV_DONTNEED``).  That is safe while views are alive: the file is
  read-only and shared, so a view touched again is mapped again from the
  page cache, with the same bytes.

What a map changes: a file that shrinks under the process, or a disk,
network or FUSE read error while a view's page is brought in, ends the
process with SIGBUS where ``preadv`` would raise ``OSError``; ooc never
changes a committed file (a new write is renamed over it), and a file
edited in place by other tools would change views already handed out,
after their checksums were checked.  The map holds its own descriptor
(CPython duplicates it) until the last view is gone.
"""

from __future__ import annotations

import math
import mmap
import os
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from .._buffers import empty_for_read
from ..errors import ChecksumError

VIEW_RELEASE_BYTES = 16 << 20  # mapped by views handed out between two releases
# a touched view maps at most the huge pages it overlaps (2 MiB with 4 KiB pages)
MAP_GRAIN = mmap.PAGESIZE * (mmap.PAGESIZE // 8)


class PerProcessFile:
    """One stored file: ``preadv`` reads and views of a read-only memory map.

    The descriptor is opened lazily, once per process: one inherited
    through ``fork`` is never used, a child opens its own.  Pickles as the
    path alone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = -1
        self._map: mmap.mmap | None = None
        self._viewed = 0  # bytes the views since the last release can map

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

    def view(self, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A read-only array over the file's bytes at ``offset``, without a copy.

        The map is made on first use and kept (a forked child shares it:
        the mapping is of a file that never changes).
        """
        mapped = self._map
        if mapped is None:
            mapped = self._open_map()
        nbytes = dtype.itemsize * math.prod(shape)
        if offset + nbytes > len(mapped):
            raise self._truncated(len(mapped), nbytes, offset)
        # count what touching the view can map: whole huge page-cache folios
        # (or less), so that even views of a few bytes keep the map bounded
        grain = MAP_GRAIN
        span = -(-(offset + nbytes) // grain) * grain - offset // grain * grain
        self._viewed += span
        if self._viewed >= VIEW_RELEASE_BYTES:
            self._viewed = span  # this view is touched after the release
            mapped.madvise(mmap.MADV_DONTNEED)
        return np.ndarray(shape, dtype, mapped, offset)

    def _open_map(self) -> mmap.mmap:
        # two threads racing here make two maps; each view keeps its own alive
        self._map = mmap.mmap(self.fd(), 0, prot=mmap.PROT_READ)
        return self._map

    def _read_rest(self, fd: int, view: memoryview, offset: int, done: int) -> None:
        """After a short read: go on, or fail if the file ended early."""
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                raise self._truncated(offset + done, len(view), offset)
            done += n

    def _truncated(self, end: int, nbytes: int, offset: int) -> ChecksumError:
        return ChecksumError(
            f"{self.path}: file ends at byte {end}, before the {nbytes} bytes "
            f"expected at offset {offset}. The file was truncated; write the "
            "dataset again.")

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
        self._map = None  # unmapped once no view refers to it

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
