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
  rows.  Mapped pages count as resident, so once views handed out (of any file
  of this process) could have mapped ``VIEW_RELEASE_BYTES`` (counted in the
  large page-cache folios, 2 MiB, that Linux may map at once), the maps'
  page-table entries are dropped (``MADV_DONTNEED``).  That is safe while
  views are alive: the file is read-only and shared, so a view touched again
  is mapped again from the page cache, with the same bytes.  Where ``madvise`` is missing
  (:data:`ooc._platform.MADVISE`) a view is a read-only copy instead.

Where ``preadv`` is missing (:data:`ooc._platform.PREADV`), ``pread``
reads and the bytes are copied into the caller's buffer.

What a map changes: a file that shrinks under the process, or a disk,
network or FUSE read error while a view's page is brought in, ends the
process with SIGBUS where ``preadv`` would raise ``OSError``; ooc never
changes a committed file (a new write is renamed over it), and a file
edited in place by other tools would change views already handed out,
after their checksums were checked.  The map holds its own descriptor
(CPython duplicates it) until the last view is gone.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import weakref
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from .._buffers import empty_for_read
from .._platform import MADVISE, PREADV
from ..errors import ChecksumError, DatasetChangedError

VIEW_RELEASE_BYTES = 16 << 20  # mapped by views handed out between two releases
# what touching a view may map at once: the large page-cache folios it overlaps,
# counted as 2 MiB whatever the page size (a grain derived from the page size,
# 32 or 512 MiB on 16 or 64 KiB-page kernels, would exceed VIEW_RELEASE_BYTES
# and make every view drop the whole map)
MAP_GRAIN = max(mmap.PAGESIZE, 2 << 20)


def pread_into(fd: int, buf: Any, offset: int) -> int:
    """Read into ``buf`` (a writable, C-contiguous buffer) the bytes at ``offset``.

    Returns how many bytes were read (fewer at the end of the file).
    """
    if PREADV:
        return os.preadv(fd, [buf], offset)
    target = np.frombuffer(buf, np.uint8)  # no preadv: read, then copy
    data = os.pread(fd, len(target), offset)
    target[:len(data)] = np.frombuffer(data, np.uint8)
    return len(data)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a stored file from a replacement: device, inode, size, mtime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def check_identity(path: Path, fd: int, expected: tuple[int, ...] | None) -> None:
    """Raise DatasetChangedError unless ``fd`` is the file first opened at ``path``."""
    found = file_identity(os.fstat(fd))
    if expected is not None and found != expected:
        raise DatasetChangedError(
            f"{path}: this file was replaced or changed after the dataset was opened "
            f"(device, inode, size, mtime were {expected}, now {found}). Open the dataset "
            "again to read what is there now.")


def reopen(path: Path, expected: tuple[int, ...] | None) -> int:
    """Open ``path`` again for reading, checked to be the file first opened there."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise DatasetChangedError(
            f"{path}: this file of an open dataset is gone (deleted or moved after the "
            "dataset was opened). Open the dataset again.") from None
    try:
        check_identity(path, fd, expected)
    except DatasetChangedError:
        os.close(fd)
        raise
    return fd


def _release(mapped: mmap.mmap, grains: set[int]) -> None:
    """Drop the map's pages in ``grains`` (of ``MAP_GRAIN`` bytes), one call per run.

    Only the runs views touched: a call over the whole map walks all of its
    page tables, three times the cost of a 16 MiB run (docs/BENCHMARKS.md).
    """
    runs: list[list[int]] = []
    for g in sorted(grains):
        if runs and runs[-1][1] == g:
            runs[-1][1] = g + 1
        else:
            runs.append([g, g + 1])
    for first, end in runs:
        start = first * MAP_GRAIN
        mapped.madvise(mmap.MADV_DONTNEED, start, min(end * MAP_GRAIN, len(mapped)) - start)


# Files whose views may have mapped pages since their last release: the budget is the
# process's, so that reading many files (the parts of a sharded dataset, train and val
# at once) keeps as little mapped as reading one.
_MAPPING: weakref.WeakSet[PerProcessFile] = weakref.WeakSet()
_held = 0  # their grains, counted as views add them (made exact again at each release)


def _make_room(asking: PerProcessFile, grains: range, new: int) -> None:
    """Release files' views, the file holding the most grains first, until a view of
    ``grains`` (``new`` of them not counted yet) by ``asking`` fits in the budget.
    Largest first: a file read beside a big one (the labels beside ``x``) keeps its
    few pages mapped."""
    global _held
    limit = VIEW_RELEASE_BYTES // MAP_GRAIN
    _held = sum(len(f._touched) for f in _MAPPING)
    for file in sorted(_MAPPING, key=lambda f: len(f._touched), reverse=True):
        if _held + new <= limit:
            return
        if file is asking:
            new = len(grains)  # its view maps all of them again
        file.release_views()  # _held less its grains


class PreadFile(io.RawIOBase):
    """A read-only file object over a descriptor it does not own, with its own
    position: ``pread`` leaves the descriptor's shared offset alone, so forked
    processes reading through one inherited descriptor never move each other's."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd, self._pos = fd, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = pread_into(self._fd, memoryview(buffer).cast("B"), self._pos)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos,
                os.SEEK_END: os.fstat(self._fd).st_size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


class PerProcessFile:
    """One stored file: ``preadv`` reads and views of a read-only memory map.

    The descriptor is opened with the dataset and kept, so reads never go
    back to the path: a file replaced there later is not read.  A forked
    child reads through the inherited descriptor; an unpickled copy (a
    spawned worker) opens the path again and checks that it is the same
    file (:func:`file_identity`), else raises DatasetChangedError.
    """

    def __init__(self, path: Path, fd: int | None = None,
                 identity: tuple[int, ...] | None = None) -> None:
        self.path = path
        self._fd = fd
        self.identity = file_identity(os.fstat(fd)) if fd is not None else identity
        self._map: mmap.mmap | None = None
        self._touched: set[int] = set()  # grains the views since the last release can map
        self._listed = False  # in _MAPPING

    def fd(self) -> int:
        """The descriptor, opened again (and checked) after unpickling or close."""
        if self._fd is None:
            self._fd = reopen(self.path, self.identity)
        return self._fd

    def read_into(self, buf: np.ndarray, offset: int) -> None:
        """Fill ``buf`` (C-contiguous) with the bytes at ``offset``."""
        fd = self._fd if self._fd is not None else self.fd()
        done = pread_into(fd, buf, offset)
        if done < buf.nbytes:
            self._read_rest(fd, memoryview(buf.reshape(-1).view(np.uint8)), offset, done)

    def view(self, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A read-only array over the file's bytes at ``offset``, without a copy.

        The map is made on first use and kept (a forked child shares it).
        Without ``madvise``, a read-only copy.
        """
        if not MADVISE:  # no way to let the map's pages go: bounded copies instead
            out = empty_for_read(shape, dtype, offset)
            self.read_into(out, offset)
            out.flags.writeable = False
            return out
        mapped = self._map or self._open_map()
        end = offset + dtype.itemsize * math.prod(shape)
        if end > len(mapped):
            raise self._truncated(len(mapped), end - offset, offset)
        # what touching the view can map: whole large page-cache folios (or less),
        # so that even views of a few bytes keep the map bounded
        grains = range(offset // MAP_GRAIN, -(-end // MAP_GRAIN))
        if not self._touched.issuperset(grains):  # most views fall in grains already counted
            global _held
            new = sum(g not in self._touched for g in grains)
            if (_held + new) * MAP_GRAIN > VIEW_RELEASE_BYTES:
                _make_room(self, grains, new)
            before = len(self._touched)
            self._touched.update(grains)
            _held += len(self._touched) - before
            if not self._listed:
                _MAPPING.add(self)
                self._listed = True
        return np.ndarray(shape, dtype, mapped, offset)

    def release_views(self) -> None:
        """Drop the map's pages that views since the last release could have mapped."""
        global _held
        if self._map is not None and self._touched:
            _release(self._map, self._touched)
        if self._listed:
            _held -= len(self._touched)
            _MAPPING.discard(self)
            self._listed = False
        self._touched = set()

    def _open_map(self) -> mmap.mmap:
        # two threads racing here make two maps; each view keeps its own alive
        self._map = mmap.mmap(self.fd(), 0, prot=mmap.PROT_READ)
        return self._map

    def _read_rest(self, fd: int, view: memoryview, offset: int, done: int) -> None:
        """After a short read: go on, or fail if the file ended early."""
        while done < len(view):
            n = pread_into(fd, view[done:], offset + done)
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
        """Close the descriptor (a forked child closes only its own copy)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.release_views()
        self._map = None  # unmapped once no view refers to it

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "identity": self.identity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], identity=state["identity"])  # type: ignore[misc]
