"""Crash-safe publication: write under a temporary name, fsync, rename.

A writer works in ``<final>.ooc-tmp-<host>-<pid>-<token>`` next to the final path.  At
commit the backend flushes and fsyncs its files, then :func:`publish` moves
the temporary into place with one atomic ``rename`` (a file) or, when a
directory already stands at the final path, one ``renameat2(RENAME_EXCHANGE)``
swap followed by deleting the old tree.  A process killed at any moment thus
leaves either no dataset or the previous one under the final path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from .._platform import PROC_FS, PROCESS_PROBE, fcntl, glibc
from ..errors import DatasetExistsError, OutputConflictError
from ..format import FORMAT_NAME, HDF5_SIGNATURE, MANIFEST_FILENAME, SHARDS_MANIFEST, TMP_MARKER

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def temporary_path(final: Path) -> Path:
    """Return a fresh temporary sibling of ``final``, named after its writer.

    ``<final>.ooc-tmp-<host>-<pid>-<token>``: the host and process id let a
    later writer tell a dead writer's temporary from a live one's.
    """
    return final.with_name(f"{final.name}{TMP_MARKER}{_host()}-{os.getpid()}-"
                           f"{secrets.token_hex(3)}")


def spill_path(tmp: Path) -> Path:
    """Where the writer of temporary ``tmp`` keeps rows it shuffles before writing them.

    Named like ``tmp``, so that it is never taken for a dataset and a dead
    writer's is deleted with its temporary (:func:`remove_dead_temporaries`).
    """
    return tmp.with_name(tmp.name + "-spill")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "_"


_WRITER = re.compile(r"(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]+(-old|-spill)?\Z")


def hold_lock(path: Path) -> int | None:
    """Take an exclusive ``flock`` on ``path`` (a writer's temporary) for as long
    as the returned descriptor is open; None where the platform has no flock."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _is_locked(path: Path) -> bool:
    """Whether a live process holds an exclusive lock on ``path``: npy writers take
    one (:func:`hold_lock`), libhdf5 another on the files it writes."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _writer_is_dead(tmp: Path) -> bool:
    """Whether the process that named ``tmp`` ran on this host and is gone.

    A temporary still locked by its writer is alive whatever the process id
    says (a writer in another PID namespace of a host of the same name).
    """
    if _is_locked(tmp):
        return False
    match = _WRITER.match(tmp.name.rpartition(TMP_MARKER)[2])
    if match is None or match["host"] != _host():
        return False  # another host's writer, or not named by ooc: not ours to judge
    pid = int(match["pid"])
    if pid == os.getpid() or not PROCESS_PROBE:
        return False  # without a probe, a temporary is left for its writer or the user
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    if not PROC_FS:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def remove_dead_temporaries(final: Path) -> list[Path]:
    """Delete the temporaries of ``final`` whose writers died; return them.

    Called when a writer of ``final`` starts.  A temporary of a live writer,
    of another host, or not named by ooc is left alone.
    """
    dead = [tmp for tmp in leftover_temporaries(final) if _writer_is_dead(tmp)]
    for tmp in dead:
        remove(tmp)
    return dead


def leftover_temporaries(final: Path) -> list[Path]:
    """Return temporaries that writers of ``final`` left behind."""
    return sorted(final.parent.glob(f"{final.name}{TMP_MARKER}*"))


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named like a writer's temporary."""
    return TMP_MARKER in path.name


def is_dataset(path: Path) -> bool:
    """Whether ``path`` holds an ooc dataset and nothing else (recognised by its manifest).

    Damaged and unfinished datasets count; a directory that also holds
    files an ooc writer never makes does not, so replacing it cannot take
    a user's files with it.
    """
    if path.is_dir():
        if (path / SHARDS_MANIFEST).exists():
            return (_npy_manifest_ok(path / SHARDS_MANIFEST)
                    and not _foreign_files(path, sharded=True))
        return _npy_manifest_ok(path / MANIFEST_FILENAME) and not _foreign_files(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        if f.read(8) != HDF5_SIGNATURE:
            return False
    import h5py  # only for HDF5 files, so that ooc stays light otherwise

    from .hdf5 import format_name

    try:
        with h5py.File(path, "r") as h5:
            return format_name(h5) == FORMAT_NAME
    except Exception:  # h5py raises many kinds on files it cannot read
        return False


def _npy_manifest_ok(manifest: Path) -> bool:
    try:
        return bool(json.loads(manifest.read_bytes()).get("format") == FORMAT_NAME)
    except (OSError, ValueError, AttributeError):
        return False


def _foreign_files(root: Path, sharded: bool = False) -> list[Path]:
    """Files under ``root`` that an npy writer (or a sharded one: its manifest, HDF5 parts
    and the temporaries of parts) does not make (at most one is returned)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            ours = name.endswith(".npy") or name.startswith(MANIFEST_FILENAME) or (
                sharded and (name.endswith(".h5") or name.startswith(SHARDS_MANIFEST)
                             or TMP_MARKER in name))
            if not ours:
                return [Path(dirpath, name)]
    return []


def check_output(path: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Raise unless a new dataset may be published at ``path``.

    Allowed: nothing there yet, or an ooc dataset with ``overwrite``.  Never
    allowed: anything else (a user's file or folder), or a path that is,
    holds or lies inside one of ``inputs`` (the inputs of the same run).
    """
    _check_not_an_input(path, inputs)
    if not os.path.lexists(path):
        return
    if not is_dataset(path):
        what = "a folder" if path.is_dir() else "a file"
        extra = (_foreign_files(path, (path / SHARDS_MANIFEST).exists())[:1]
                 if path.is_dir() else [])
        found = f"{what} that is not an ooc dataset" + (f" (it holds {extra[0]})" if extra
                                                        else "")
        raise OutputConflictError(
            f"{path}: {found} is here. ooc replaces only its own datasets, even with "
            "--overwrite (overwrite=True). Choose another output path, or move it away "
            "yourself if you no longer need it.")
    if not overwrite:
        raise DatasetExistsError(
            f"{path}: a dataset already exists here. Pass --overwrite (overwrite=True) to "
            "replace it (atomically, at commit), or choose another output path.")


def _check_not_an_input(path: Path, inputs: Iterable[str | Path]) -> None:
    out = path.resolve()
    for name in inputs:
        source = Path(name).resolve()
        same = source == out or (source.exists() and out.exists()
                                 and os.path.samefile(source, out))
        if same or out in source.parents or source in out.parents:
            where = ("is" if same else "holds" if out in source.parents else "lies inside")
            raise OutputConflictError(
                f"{path}: the output path {where} the input {name} of this run; ooc never "
                "writes over or into its own inputs. Choose an output path outside them.")


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
    """Atomically swap two paths with renameat2; False where unsupported (not glibc, or
    a file system without RENAME_EXCHANGE)."""
    fn = glibc("renameat2")
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

