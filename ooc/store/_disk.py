"""Running out of space while writing: one error, whatever did the writing.

A full disk, an exhausted quota and a file-size limit (``ulimit -f``) reach
ooc in several forms: an ``OSError`` with errno ENOSPC, EDQUOT or EFBIG;
an h5py ``OSError`` or ``RuntimeError`` whose text carries HDF5's report
(``errno = 28``); NumPy's ``tofile`` reporting a short write (``15551
requested and 105 written``) without an errno.  :func:`writing` turns each
into :class:`~ooc.errors.NoSpaceError` naming the file being written.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import NoSpaceError

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_HDF5_ERRNO = re.compile(r"errno = (\d+)")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def no_space_reason(exc: BaseException) -> tuple[int, str] | None:
    """``(errno, what happened)`` if ``exc`` says that space ran out, else None."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return exc.errno, os.strerror(exc.errno)
    if not isinstance(exc, (OSError, RuntimeError)):
        return None
    text = str(exc)
    for found in _HDF5_ERRNO.findall(text):
        if int(found) in NO_SPACE_ERRNOS:
            return int(found), os.strerror(int(found))
    for code in NO_SPACE_ERRNOS:
        if os.strerror(code) in text:
            return code, os.strerror(code)
    # a short write of a regular file: only space or a size limit stops one
    short = _SHORT_WRITE.search(text)
    return (errno.ENOSPC, f"short write: {short.group()}") if short else None


def no_space_error(exc: BaseException, path: str | Path) -> NoSpaceError | None:
    """``exc`` as a NoSpaceError about ``path``, or None if it is about something else."""
    if isinstance(exc, NoSpaceError):
        return exc
    reason = no_space_reason(exc)
    if reason is None:
        return None
    return NoSpaceError(*reason, str(getattr(exc, "filename", None) or path))


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Raise NoSpaceError about ``path`` for any sign of lack of space inside the block."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        error = no_space_error(exc, path)
        if error is None or error is exc:
            raise
        raise error from None


def save_npy(path: Path, arr: np.ndarray) -> None:
    """``np.save`` to a name of this call's own, then renamed over ``path``.

    A job run again, or twice at once, after a cluster lost its worker, never
    leaves a file mixing two writes or cut short.
    """
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with writing(path), open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
