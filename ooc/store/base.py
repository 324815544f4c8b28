"""The store contract that every backend implements.

A store is a set of named, growable arrays (keys such as ``train/x`` or
``train/x/indptr``) plus one JSON manifest.  Backends implement a few
primitives; everything about splits, sparse matrices and metadata lives
above them, in :mod:`ooc.writer` and :mod:`ooc.reader`.

Writer primitives: ``append(key, array)`` (the first call creates the array),
``layout(key)`` (backend facts recorded in the manifest), ``finish(manifest)``
(write the manifest, flush and fsync inside the temporary) and ``abort()``.

Reader primitives: ``manifest``, ``read(key, start, stop)`` (a verified read
of rows ``[start, stop)``), ``verify(key)`` (check every stored block) and
``close()``.  Readers must be picklable and must reopen their files in a
forked or spawned child, never share a handle with the parent.
"""

from __future__ import annotations

import mmap
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import crc32c
import numpy as np

from ..errors import ChecksumError

Verify = Literal["once", "always", "never"]
VERIFY_MODES = ("once", "always", "never")
RELEASE_BYTES = 8 << 20


def pow2_rows(target_bytes: int, row_nbytes: int) -> int:
    """Largest power of two of rows that fits in ``target_bytes`` (at least 1).

    Powers of two line chunks up with the usual batch sizes, so a batch is
    one piece of one chunk.
    """
    rows = max(1, target_bytes // max(1, row_nbytes))
    return 1 << (rows.bit_length() - 1)


class StoreWriter(ABC):
    """Writes arrays under a temporary path; see the module docstring."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.tmp_path = tmp_path
        self.options = options

    @abstractmethod
    def append(self, key: str, array: np.ndarray) -> None:
        """Append rows to array ``key``, creating it on first use."""

    @abstractmethod
    def layout(self, key: str) -> dict[str, Any]:
        """Return backend layout facts for ``key`` to keep in the manifest."""

    @abstractmethod
    def finish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest and make every byte durable inside tmp_path."""

    @abstractmethod
    def abort(self) -> None:
        """Release handles; the caller deletes tmp_path."""


class StoreReader(ABC):
    """Reads verified row ranges of stored arrays; see the module docstring."""

    manifest: dict[str, Any]

    def __init__(self, path: Path, verify: Verify = "once") -> None:
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}; got {verify!r}.")
        self.path = path
        self.verify_mode: Verify = verify

    @abstractmethod
    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Return rows ``[start, stop)`` of array ``key`` as a new array."""

    @abstractmethod
    def verify(self, key: str) -> None:
        """Check every stored block of ``key``; raise ChecksumError on damage."""

    @abstractmethod
    def close(self) -> None:
        """Close every handle this process holds."""

    def describe(self, key: str) -> str:
        """Name an array for error messages: file, split and array."""
        split, _, array = key.partition("/")
        return f"{self.path}: split {split!r}, array {array!r}"


class PerProcessFile:
    """A read-only memory map of one file, opened lazily, once per process.

    Reads copy out of the map.  Once ``RELEASE_BYTES`` have been copied, the
    span they came from is ``madvise(MADV_DONTNEED)``-ed: the data stay in
    the OS page cache but leave this process's resident set, so RSS stays
    within ``RELEASE_BYTES`` per file however many bytes are visited.
    (Copying from a map measured faster than ``preadv`` on warm pages.)
    A map inherited through ``fork`` is never used: a child maps the file
    anew on first use.  Pickles as the path alone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._bytes: np.ndarray | None = None
        self._pid = -1
        self._span = [0, 0, 0]  # lowest and highest offset copied, bytes copied

    def _view(self) -> np.ndarray:
        if self._pid != os.getpid() or self._bytes is None:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self._map = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) if size else None
            self._bytes = (np.frombuffer(self._map, dtype=np.uint8) if self._map is not None
                           else np.zeros(0, dtype=np.uint8))
            self._pid = os.getpid()
        return self._bytes

    def read_into(self, buf: np.ndarray, offset: int) -> None:
        """Fill ``buf`` (C-contiguous) with the bytes at ``offset``."""
        whole = self._view()
        out = buf.reshape(-1).view(np.uint8)
        end = offset + len(out)
        if end > len(whole):
            raise ChecksumError(
                f"{self.path}: file ends at byte {len(whole)}, before the {len(out)} bytes "
                f"expected at offset {offset}. The file was truncated; write the dataset "
                "again.")
        out[:] = whole[offset:end]
        self._release(offset, end)

    def crc32c(self, offset: int, length: int) -> int:
        """CRC-32C of ``length`` bytes at ``offset`` (0 past the end)."""
        whole = self._view()
        if offset + length > len(whole):
            return -1
        crc = crc32c.crc32c(whole[offset:offset + length])
        self._release(offset, offset + length)
        return crc

    def _release(self, start: int, end: int) -> None:
        span = self._span
        span[0] = min(span[0], start) if span[2] else start
        span[1], span[2] = max(span[1], end), span[2] + end - start
        if span[2] >= RELEASE_BYTES and self._map is not None:
            lo = span[0] - span[0] % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, lo, span[1] - lo)
            span[2] = 0

    def close(self) -> None:
        """Unmap the file if this process mapped it."""
        if self._map is not None and self._pid == os.getpid():
            self._bytes = None
            self._map.close()
        self._map = self._bytes = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_map": None, "_bytes": None, "_pid": -1,
                "_span": [0, 0, 0]}


class BlockVerifier:
    """Tracks which fixed-size blocks of one array were verified.

    ``ensure(start, stop)`` calls ``check(block)`` for every block that
    overlaps rows ``[start, stop)`` and has not passed yet (mode ``once``),
    for every such block (mode ``always``) or never (mode ``never``).
    ``check`` raises ChecksumError on damage.
    """

    def __init__(self, block_rows: int, n_rows: int, mode: Verify,
                 check: Callable[[int], None]) -> None:
        self.block_rows = max(1, block_rows)
        self.n_blocks = -(-n_rows // self.block_rows)
        self.mode = mode
        self.check = check
        self._done = np.zeros(self.n_blocks, dtype=bool)
        self._lock = threading.Lock()

    def ensure(self, start: int, stop: int) -> None:
        """Verify the blocks that overlap ``[start, stop)`` as the mode asks."""
        if self.mode == "never" or stop <= start:
            return
        first, last = start // self.block_rows, (stop - 1) // self.block_rows
        for block in range(first, last + 1):
            if self.mode == "always" or not self._done[block]:
                self.check(block)
                with self._lock:
                    self._done[block] = True

    def check_all(self) -> None:
        """Verify every block, whatever the mode."""
        for block in range(self.n_blocks):
            self.check(block)
        self._done[:] = True

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
