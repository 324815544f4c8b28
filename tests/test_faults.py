"""Faults while writing: killed writers, full disks and file-size limits."""

from __future__ import annotations

import errno
import os
import pickle
import re
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc import _platform
from ooc.store import _atomic, _disk

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


@pytest.mark.skipif(not _platform.PROCESS_PROBE, reason="no process probe here")
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


@pytest.mark.skipif(_platform.fcntl is None or not _platform.PROCESS_PROBE,
                    reason="no flock or process probe here")
@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_locked_temporary_is_never_taken_for_a_dead_writers(tmp_path, fmt):
    # a live writer whose pid this process cannot see (another PID namespace of a
    # host of the same name): its temporary named after a pid that is gone
    path = tmp_path / ("d.h5" if fmt == "hdf5" else "d")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    live = start_writer(path, fmt)
    live_tmp = Path(live.stdout.readline().strip())
    unseen = live_tmp.with_name(re.sub(r"-\d+-([0-9a-f]+)$", rf"-{gone}-\1", live_tmp.name))
    live_tmp.rename(unseen)  # the writer's lock goes with the file
    try:
        assert _atomic.remove_dead_temporaries(path) == [] and unseen.exists()
    finally:
        live.kill()
        live.wait()
    assert _atomic.remove_dead_temporaries(path) == [unseen] and not unseen.exists()


def test_a_temporary_names_its_writer():
    tmp = _atomic.temporary_path(Path("/x/d.h5"))
    assert tmp.name.startswith(f"d.h5.ooc-tmp-{_atomic._host()}-{os.getpid()}-")
    assert not _atomic._writer_is_dead(tmp)
    assert not _atomic._writer_is_dead(tmp.with_name(tmp.name + "-old"))


# ------------------------------------------------------------- no space
def run_limited(args: list[str], limit: int) -> subprocess.CompletedProcess:
    """``python -m ooc ARGS`` with files limited to ``limit`` bytes (as ``ulimit -f``)."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as a shell with ulimit -f and a trap
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "ooc", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, preexec_fn=limit_files)


@pytest.fixture
def no_space_corpus(textkit):
    return textkit.corpus("c.csv", docs=2000, seed=1)


NO_SPACE = r"^ooc preprocess: error: no space left on device while writing (\S+) \(.+\); " \
           r"free space and rerun with --resume\n\Z"


@pytest.mark.parametrize(("fmt", "limit", "written"), [
    ("hdf5", 200_000, r"out\.ooc-tmp-[^/]+"),  # the dataset
    ("npy", 200_000, r"out\.ooc-tmp-[^/]+/train/x/data\.npy"),
    # the first pass: the first chunk's token ids or its counts, whichever is larger
    ("hdf5", 30_000, r"out\.ooc-work/(chunks/000000\.npz|counts/run-000000\.bin\.tmp)"),
])
def test_no_space_is_one_clear_line_and_resumes(textkit, no_space_corpus, fmt, limit, written):
    import re

    out = textkit.tmp_path / "out"
    before = no_space_corpus.read_bytes()
    args = ["preprocess", str(no_space_corpus), "--out", str(out), "--format", fmt, "--quiet",
            "--workers", "2", "--chunk-rows", "256"]
    res = run_limited(args, limit)  # a timeout here would be a hung pool
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    match = re.match(NO_SPACE, res.stderr)
    assert match, res.stderr
    assert re.fullmatch(re.escape(str(textkit.tmp_path)) + "/" + written, match[1]), match[1]
    assert not out.exists() and not _atomic.leftover_temporaries(out)
    assert no_space_corpus.read_bytes() == before
    assert (textkit.tmp_path / "out.ooc-work").exists()  # kept for --resume
    res = run_limited([*args, "--resume"], 1 << 40)
    assert res.returncode == 0, res.stderr
    assert len(ooc.open(out).train) > 0


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_no_space_while_writing_a_dataset_from_the_api(tmp_path, fmt):
    path = tmp_path / "d"
    script = textwrap.dedent(f"""
        import numpy as np, ooc
        try:
            with ooc.create({str(path)!r}, {fmt!r}) as w:
                for _ in range(50):
                    w.append("train", np.ones((5000, 20), np.float32), np.zeros(5000, int))
        except ooc.NoSpaceError as exc:
            print(exc)
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120, preexec_fn=lambda: (
                             signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
                             resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.startswith("no space left on device while writing ")
    assert "(File too large); free space and write again" in res.stdout
    assert not path.exists() and not _atomic.leftover_temporaries(path)


@pytest.mark.parametrize(("exc", "reason"), [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
    (RuntimeError("Can't decrement id ref count (unable to extend file properly, errno = 27, "
                  "error message = 'File too large')"), "File too large"),
    (OSError("15551 requested and 105 written"), "short write: 15551 requested and 105 written"),
])
def test_every_form_of_running_out_of_space_is_one_error(exc, reason):
    error = _disk.no_space_error(exc, "/x/f")
    assert isinstance(error, ooc.NoSpaceError) and isinstance(error, OSError)
    assert str(error) == (f"no space left on device while writing /x/f ({reason}); free space "
                          "and write again")
    again = pickle.loads(pickle.dumps(error.with_hint("rerun")))  # from a worker process
    assert str(again).endswith(f"({reason}); rerun") and again.errno == error.errno
    assert _disk.no_space_error(OSError(errno.EIO, "I/O error"), "/x/f") is None
    assert _disk.no_space_error(ValueError("no"), "/x/f") is None


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_missing_folder_is_named_not_the_temporary(tmp_path, fmt):
    path = tmp_path / "not-made" / "d"
    with pytest.raises(FileNotFoundError, match="not-made does not exist; create it") as err:
        ooc.create(path, fmt)
    assert ".ooc-tmp" not in str(err.value)
    assert not (tmp_path / "not-made").exists()
