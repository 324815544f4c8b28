"""Crash-safe publication: write under a temporary name, fsync, rename.

A writer works in ``<final>.ooc-tmp-<token>`` next to the final path.  At
commit the backend flushes and fsyncs its files, then :func:`publish` moves
the temporary into place with one atomic ``rename`` (a file) or, when a
directory already stands at the final path, one ``renameat2(RENAME_EXCHANGE)``
swap followed by deleting the old tree.  A process killed at any moment thus
leaves either no dataset or the previous one under the final path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import shutil
from pathlib import Path

from ..format import TMP_MARKER

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def temporary_path(final: Path) -> Path:
    """Return a fresh temporary sibling of ``final``."""
    return final.with_name(f"{final.name}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(3)}")


def leftover_temporaries(final: Path) -> list[Path]:
    """Return temporaries that writers of ``final`` left behind."""
    return sorted(final.parent.glob(f"{final.name}{TMP_MARKER}*"))


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named like a writer's temporary."""
    return TMP_MARKER in path.name


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (and ``root`` itself)."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_path(Path(dirpath, name))
        fsync_path(Path(dirpath))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2; False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def publish(tmp: Path, final: Path) -> None:
    """Move the finished temporary ``tmp`` to ``final`` atomically.

    An existing dataset at ``final`` is replaced; until the rename it stays
    intact and readable.
    """
    if tmp.is_dir() and final.exists():
        if not _exchange(tmp, final):
            # No atomic swap on this system: two renames, with a window in
            # which the final path is missing (never half-written).
            os.replace(final, tmp.with_name(tmp.name + "-old"))
            os.replace(tmp, final)
            tmp = tmp.with_name(tmp.name + "-old")
        fsync_path(final.parent)
        remove(tmp)
    else:
        if final.is_dir():
            remove(final)
        os.replace(tmp, final)
    fsync_path(final.parent)


def remove(path: Path) -> None:
    """Delete a file or a directory tree, ignoring what is already gone."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

