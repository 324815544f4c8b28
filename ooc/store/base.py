"""The store contract that every backend implements.

A store is a set of named, growable arrays (keys such as ``train/x`` or
``train/x/indptr``) plus one JSON manifest.  Backends implement a few
primitives; everything about splits, sparse matrices and metadata lives
above them, in :mod:`ooc.writer` and :mod:`ooc.reader`.

Writer primitives: ``append(key, array)`` (the first call creates the array),
``layout(key)`` (backend facts recorded in the manifest), ``finish(manifest)``
(write the manifest, flush and fsync inside the temporary) and ``abort()``.

Reader primitives: ``manifest``, ``_open_array(key, spec)`` and
``close()``.  ``_open_array`` is called for every array when the store is
opened; it checks the stored dtype and shape against ``spec`` (from the
checksummed manifest) and returns an object whose ``read(start, stop)`` is
a verified read of rows ``[start, stop)`` into a new array, whose
``view(start, stop)`` returns the same rows verified the same way as a
read-only array that may share memory with the file, and whose
``verifier`` checks every stored block.

An open store reads only the files it opened: descriptors are taken at
open and kept, never looked up by path again, except after unpickling (a
spawned worker) or in a forked child that needs a library handle of its
own; those check that the path still holds the same file
(:func:`ooc.store._file.check_identity`) and raise DatasetChangedError
otherwise.  Readers must be picklable.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..format import ArraySpec, array_specs

Verify = Literal["once", "always", "never"]
VERIFY_MODES = ("once", "always", "never")


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
        self._arrays: dict[str, Any] = {}

    @abstractmethod
    def _open_array(self, key: str, spec: ArraySpec) -> Any:
        """Open one array, checked against ``spec``: ``.read``, ``.view``, ``.verifier``."""

    def _open_arrays(self, where: str) -> None:
        """Open every array the manifest lists, each checked against it (dtype, shape)."""
        for key, spec in array_specs(self.manifest, where).items():
            self._arrays[key] = self._open_array(key, spec)

    def _array(self, key: str) -> Any:
        return self._arrays[key]

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Return rows ``[start, stop)`` of array ``key`` as a new array."""
        return self._array(key).read(start, stop)

    def view(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of ``key``, read-only and where possible without a copy."""
        return self._array(key).view(start, stop)

    def viewer(self, key: str) -> Callable[[int, int], np.ndarray]:
        """``view`` of ``key`` as a function of ``(start, stop)``."""
        return self._array(key).view

    def verify(self, key: str) -> None:
        """Check every stored block of ``key``; raise ChecksumError on damage."""
        self._array(key).verifier.check_all()

    @abstractmethod
    def close(self) -> None:
        """Close every handle this process holds."""

    def describe(self, key: str) -> str:
        """Name an array for error messages: file, split and array."""
        split, _, array = key.partition("/")
        return f"{self.path}: split {split!r}, array {array!r}"


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
        # blocks a read may still have to check: none in mode never, all in always
        self._todo = 0 if mode == "never" else self.n_blocks
        self._lock = threading.Lock()

    def ensure(self, start: int, stop: int) -> None:
        """Verify the blocks that overlap ``[start, stop)`` as the mode asks."""
        if stop <= start or not self._todo:
            return
        for block in range(start // self.block_rows, (stop - 1) // self.block_rows + 1):
            if self.mode == "always":
                self.check(block)
            elif not self._done[block]:
                self.check(block)
                with self._lock:
                    self._todo -= not self._done[block]
                    self._done[block] = True

    def check_all(self) -> None:
        """Verify every block, whatever the mode."""
        for block in range(self.n_blocks):
            self.check(block)
        self._done[:] = True
        if self.mode == "once":
            self._todo = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
