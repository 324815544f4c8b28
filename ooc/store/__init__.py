"""Chunked, checksummed stores: one contract (:mod:`.base`), one backend per module.

Backends are found by name and imported lazily, so that ``import ooc`` does
not pay for h5py until an HDF5 dataset is used.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .._platform import POSIX_FILES
from ..errors import (
    DatasetChangedError,
    DatasetNotFoundError,
    IncompleteDatasetError,
    NotADatasetError,
    UnsupportedPlatformError,
)
from ..format import HDF5_SIGNATURE, SHARDS_MANIFEST
from ._atomic import is_temporary, leftover_temporaries
from .base import StoreReader, StoreWriter, Verify

BACKENDS: dict[str, tuple[str, str, str]] = {
    "hdf5": ("ooc.store.hdf5", "Hdf5Writer", "Hdf5Reader"),
    "npy": ("ooc.store.npy", "NpyWriter", "NpyReader"),
}
# read only: written part by part by ooc.sharded_writer, not through a StoreWriter
SHARDED = ("ooc.store.sharded", "", "ShardedReader")


def _backend(fmt: str, role: int) -> type:
    if fmt not in BACKENDS and not (fmt == "sharded" and role):
        raise ValueError(f"format must be one of {sorted(BACKENDS)}; got {fmt!r}.")
    if not POSIX_FILES:
        raise UnsupportedPlatformError(
            f"ooc datasets need POSIX files (pread, fsync of a directory, a rename over an "
            f"open file), which this platform ({sys.platform}) lacks; reading and writing "
            "them is supported on Linux and macOS. On Windows, run ooc under WSL.")
    module_name, *names = SHARDED if fmt == "sharded" and role else BACKENDS[fmt]
    return getattr(importlib.import_module(module_name), names[role])


def writer_class(fmt: str) -> type[StoreWriter]:
    """Return the writer class of backend ``fmt``."""
    return _backend(fmt, 0)


def detect_format(path: Path) -> str:
    """Tell which backend wrote ``path``: ``"npy"``, ``"hdf5"`` or ``"sharded"``."""
    if is_temporary(path):
        raise IncompleteDatasetError(
            f"{path}: this is the temporary of an ooc writer, which did not finish (or has "
            "not yet): a temporary is never opened, whatever it holds. Open the final path "
            "once the write is committed, or delete this and run the write again.")
    if path.is_dir():
        return "sharded" if (path / SHARDS_MANIFEST).exists() else "npy"
    if not path.exists():
        leftovers = leftover_temporaries(path)
        hint = (f" An unfinished write left {leftovers[0]}: the writer stopped before "
                "committing, so no dataset was published." if leftovers else "")
        raise DatasetNotFoundError(f"{path}: no such dataset.{hint}")
    if not path.is_file():
        raise NotADatasetError(f"{path}: expected an ooc dataset; found neither a regular "
                               "file nor a directory.")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        return "hdf5"
    raise NotADatasetError(
        f"{path}: expected an ooc dataset (an HDF5 file or a directory with ooc.json); "
        "found a file of another kind.")


def open_store(path: Path, verify: Verify = "once", attempts: int = 3) -> StoreReader:
    """Open the store at ``path`` with the backend that wrote it (or a sharded dataset).

    A dataset replaced while it is being opened is opened again, up to
    ``attempts`` times in all.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _backend(detect_format(path), 1)(path, verify=verify)
        except DatasetChangedError:
            if attempt == attempts:
                raise
    raise ValueError(f"attempts must be >= 1; got {attempts}.")
