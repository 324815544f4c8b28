"""The command line as users meet it: Ctrl-C, help texts, pipes, progress in a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def ooc_process(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ooc", *args], cwd=REPO, env=_env(),
                            **kwargs)


def test_ctrl_c_prints_one_line_and_resume_completes(textkit):
    corpus = textkit.corpus("c.csv", docs=6000, seed=5, words_per_doc=60, vocab=5000)
    out = textkit.tmp_path / "out.h5"
    args = ["preprocess", str(corpus), "--out", str(out), "--workers", "2", "--quiet",
            "--chunk-rows", "100", "--top-k", "2000"]
    # its own process group, as a terminal would signal every process of the job
    proc = ooc_process(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       start_new_session=True)
    work = out.with_name(out.name + ".ooc-work")
    deadline = time.monotonic() + 60
    while not (work / "chunks").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no work directory appeared"
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode in (1, 130), err
    assert "Traceback" not in err
    assert err == "ooc preprocess: interrupted; rerun with --resume to continue\n"
    res = subprocess.run([sys.executable, "-m", "ooc", *args, "--resume"], cwd=REPO,
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.exists() and not work.exists()
