"""Small helpers for human-readable summaries: sizes, peak memory, progress bars."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from ._platform import MAXRSS_UNIT, PROC_FS, glibc, resource


def human_bytes(n: float) -> str:
    """Format a byte count with a binary unit: ``1.5 GiB``, ``1 GiB`` (no ``.0``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f}".removesuffix(".0") + f" {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_peak(n: int) -> str:
    """A peak memory for a summary: ``human_bytes``, or ``unknown`` where the OS did not say."""
    return human_bytes(n) if n > 0 else "unknown"


def peak_rss_bytes(pid: int | None = None) -> int:
    """Peak resident set size of this process (or of ``pid``) so far, as the OS counts it.

    Reads ``VmHWM`` from /proc on Linux: ``ru_maxrss`` of a process started
    by fork and exec can report its parent's peak instead of its own.
    Elsewhere ``getrusage`` for this process; 0 where neither tells (another
    process without /proc, or no ``getrusage``).
    """
    if PROC_FS:
        try:
            with open(f"/proc/{pid or os.getpid()}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    if pid or resource is None:
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * MAXRSS_UNIT


KEEP_FREE = 64 << 20
"""Freed heap memory a process keeps for its next allocations (bytes)."""


def release_memory() -> None:
    """Hand freed heap pages back to the OS once more than :data:`KEEP_FREE` of them
    have piled up (glibc's ``malloc_trim``; elsewhere a no-op).

    glibc keeps freed NumPy temporaries in its heap, so without this the
    resident size of a long loop settles at the sum of its largest transients
    instead of the largest one.  Trimming after every job instead made each
    job fault its transients in afresh: at 800k documents 3.1 million page
    faults, a quarter of the run in the kernel.
    """
    malloc_trim = glibc("malloc_trim")
    if malloc_trim is not None and _free_heap() > KEEP_FREE:
        malloc_trim(0)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _free_heap() -> int:
    """Bytes free in glibc's heap (``mallinfo2``, glibc 2.33+; else more than
    :data:`KEEP_FREE`, so that every call trims)."""
    mallinfo2 = glibc("mallinfo2")
    if mallinfo2 is None:
        return KEEP_FREE + 1
    mallinfo2.restype = _Mallinfo2
    return int(mallinfo2().fordblks)


def bytes_on_disk(path: Path) -> int:
    """Total size of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


LOG_INTERVAL_S = 10.0
"""Seconds between progress lines written to a file or a pipe (not a terminal)."""


def progress_bar(desc: str, total: int | None = None, *, enabled: bool = True,
                 file: TextIO | None = None) -> Any:
    """A tqdm bar counting rows on stderr: redrawn in place on a terminal, elsewhere
    (a log file, a pipe) one plain line every :data:`LOG_INTERVAL_S` seconds."""
    from tqdm import tqdm

    stream = sys.stderr if file is None else file
    options: dict[str, Any] = {"dynamic_ncols": True}
    if not _is_terminal(stream):
        options = {"file": _Lines(stream), "mininterval": LOG_INTERVAL_S, "ascii": True,
                   "ncols": 100, "dynamic_ncols": False}
    return tqdm(**{"file": stream, **options}, total=total, desc=desc, unit=" rows",
                unit_scale=True, disable=not enabled)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


class _Lines:
    """A stream for tqdm that turns its in-place redraws (``\\r`` + text) into lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self.stream.write(part.rstrip() + "\n")

    def flush(self) -> None:
        self.stream.flush()
