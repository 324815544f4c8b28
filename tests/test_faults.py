"""Faults while writing: killed writers, full disks and file-size limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc.store import _atomic

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------- dead temporaries
def start_writer(path: Path, fmt: str) -> subprocess.Popen:
    """A writer in a child process that reports its temporary, waits for a line, aborts."""
    script = textwrap.dedent(f"""
        import sys, numpy as np, ooc
        w = ooc.create({str(path)!r}, {fmt!r})
        w.append("train", np.ones((100, 3), np.float32), np.zeros(100, int))
        print(w._tmp, flush=True)
        sys.stdin.readline()
        w.abort()
    """)
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_next_writer_removes_only_dead_writers_temporaries(tmp_path, fmt):
    path = tmp_path / ("d.h5" if fmt == "hdf5" else "d")
    live = start_writer(path, fmt)
    live_tmp = Path(live.stdout.readline().strip())
    killed = start_writer(path, fmt)
    dead_tmp = Path(killed.stdout.readline().strip())
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    not_ours = tmp_path / f"{path.name}.ooc-tmp-somebody"
    not_ours.write_text("not named by an ooc writer")
    assert dead_tmp.exists() and live_tmp.exists()

    with ooc.create(path, fmt) as w:  # the next writer of this path
        w.append("train", np.zeros((2, 3), np.float32), [0, 1])
    assert not dead_tmp.exists()
    assert live_tmp.exists() and not_ours.exists()
    live.communicate("go\n", timeout=60)
    assert live.returncode == 0 and len(ooc.open(path).train) == 2
    assert _atomic.leftover_temporaries(path) == [not_ours]


def test_a_temporary_names_its_writer():
    tmp = _atomic.temporary_path(Path("/x/d.h5"))
    assert tmp.name.startswith(f"d.h5.ooc-tmp-{_atomic._host()}-{os.getpid()}-")
    assert not _atomic._writer_is_dead(tmp)
    assert not _atomic._writer_is_dead(tmp.with_name(tmp.name + "-old"))
