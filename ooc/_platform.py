"""What this platform offers the fast paths, checked once, in one place.

Every platform- or allocator-specific trick in ooc asks this module first and
has a portable fallback beside it (plain copies, no buffer pool, no allocator
tuning).  Setting ``OOC_PORTABLE=1`` in the environment forces every fallback,
so the test suite can run once the way a platform without them would.

Supported: Linux and macOS (any page size).  Elsewhere (Windows) ``import
ooc`` works, and opening or writing a dataset raises
:class:`~ooc.errors.UnsupportedPlatformError`: the stores rely on POSIX
files (``pread``, fsync of directories, renames over open files).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import mmap
import os
import signal
import sys
from types import ModuleType
from typing import Any

PORTABLE = os.environ.get("OOC_PORTABLE", "") not in ("", "0")


def _offered(available: bool) -> bool:
    return available and not PORTABLE


def _module(name: str) -> ModuleType | None:
    """A standard module that only some platforms have, or None."""
    if PORTABLE:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# POSIX files: no fallback, so never forced off; without them the stores refuse to run
POSIX_FILES = os.name == "posix"

# os.register_at_fork: absent on Windows
FORK_HOOK = _offered(hasattr(os, "register_at_fork"))

# worker processes for preprocessing: forked where fork is safe (Linux), so that
# tables built once are shared; else spawned (fork is unsafe on macOS, absent on Windows)
START_METHOD = "fork" if _offered(sys.platform == "linux") else "spawn"

# /proc/<pid>/status (VmHWM, process state): Linux
PROC_FS = _offered(os.path.isfile("/proc/self/status"))

# getrusage: absent on Windows; ru_maxrss counts bytes on macOS, KiB elsewhere
resource = _module("resource")
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024

# flock on writers' temporaries: absent on Windows (process ids alone tell dead writers)
fcntl = _module("fcntl")

# os.kill(pid, 0) only probes on POSIX; on Windows it would terminate the process
PROCESS_PROBE = _offered(os.name == "posix")

# ignoring SIGXFSZ makes a file-size limit an error to report instead of a kill
SIGXFSZ = getattr(signal, "SIGXFSZ", None) if not PORTABLE else None

# preadv reads into a caller's buffer without a copy (absent on macOS < 11, Windows);
# else pread and a copy
PREADV = _offered(hasattr(os, "preadv"))

# opening a dataset's files relative to a descriptor of its directory (absent on
# Windows); else by path, with the directory's identity checked before and after
DIR_FD = _offered(os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"))

# read-only views of a memory map whose pages are let go with MADV_DONTNEED
# (absent on Windows); else views are plain copies
MADVISE = _offered(hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED"))


@functools.cache
def chunk_iter() -> bool:
    """Whether h5py's ``DatasetID.chunk_iter`` works: HDF5 1.10.10+ of 1.10, or 1.12.3+.

    A function, so that ``import ooc`` does not import h5py.
    """
    import h5py

    version = h5py.version.hdf5_version_tuple[:3]
    works = version >= (1, 12, 3) or (1, 10, 10) <= version < (1, 11)
    return _offered(works and hasattr(h5py.h5d.DatasetID, "chunk_iter"))


@functools.cache
def chunk_info() -> bool:
    """Whether h5py's ``DatasetID.get_chunk_info_by_coord`` exists (HDF5 1.10.5+)."""
    import h5py

    return _offered(hasattr(h5py.h5d.DatasetID, "get_chunk_info_by_coord"))


@functools.cache
def glibc(name: str) -> Any:
    """A function of the already-loaded C library, or None where it lacks it (not glibc).

    ``ctypes.util.find_library`` would fork ``ldconfig`` in every worker.
    """
    if PORTABLE:
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None


@functools.cache
def numba() -> bool:
    """Whether numba compiles ooc's kernels here (an optional extra, ``ooc[numba]``).

    A function, so that ``import ooc`` does not import numba; an install that
    fails to import (a NumPy too new for it) counts as absent.
    """
    if PORTABLE:
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True
