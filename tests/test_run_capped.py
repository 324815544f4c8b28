"""Tests of ``tools/run_capped.py``: running a command under a hard memory cap.

Size parsing, exit-status mapping and the error paths (missing command, no cap
available) run everywhere; the capped runs need a memory cgroup this process
may create (root, cgroup v1 or v2, or systemd) and skip with the reason where
there is none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_tool

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "run_capped.py"
MiB = 1024**2


rc = load_tool(SCRIPT, "run_capped")


def _no_cap_reason() -> str | None:
    """None where a cap can be set here, else why not (the message run_capped would print)."""
    if rc.capping_method() is not None:
        return None
    try:
        rc.make_cap(64 * MiB).remove()
    except (rc.CapUnavailableError, OSError) as error:
        return str(error)
    return "capping_method() found no method"


NO_CAP = _no_cap_reason()
needs_cap = pytest.mark.skipif(NO_CAP is not None, reason=f"no memory cap here: {NO_CAP}")


def _allocate(mib: int) -> list[str]:
    """A Python command that writes ``mib`` MiB of memory, then exits 0."""
    return [sys.executable, "-c", f"data = b'x' * ({mib} * 2**20); print(len(data))"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2G", 2 * 1024**3),
        ("512M", 512 * MiB),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2GB", 2 * 1024**3),
        ("100k", 100 * 1024),
        ("64 MiB", 64 * MiB),
        ("4096", 4096),
        ("0", 0),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert rc.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "2X", "-1G", "1.5.2M", "two"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="Expected a size like"):
        rc.parse_size(text)


def test_bad_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rc.main(["--memory", "2X", "--", "true"])
    assert exit_info.value.code == 2
    assert "Got '2X' instead" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("returncode", "expected"), [(0, (0, None)), (3, (3, None)), (-9, (137, "SIGKILL"))]
)
def test_exit_status(returncode: int, expected: tuple[int, str | None]) -> None:
    assert rc._exit_status(returncode) == expected


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["no-such-command-ooc"], "command not found on PATH: 'no-such-command-ooc'"),
        (["/nonexistent/bin/tool", "-x"], "command not found: '/nonexistent/bin/tool'"),
        ([], "no command given"),
    ],
)
def test_missing_command(
    command: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rc.main(["--memory", "100M", "--", *command]) == 127
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_no_cap_means_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("_make_v2", "_make_v1", "_make_systemd"):
        monkeypatch.setattr(rc, name, lambda limit, swap, tried, n=name: tried.append(n))
    marker = tmp_path / "ran"
    code = rc.main(["--memory", "1G", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot set a memory cap: _make_v2; _make_v1; _make_systemd" in err
    assert "not running the command uncapped" in err
    assert not marker.exists()
    assert rc.capping_method() is None


@needs_cap
def test_fits_under_cap() -> None:
    result = rc.run_capped(_allocate(50), 200 * MiB)
    assert (result.exit_status, result.signal, result.oom_killed) == (0, None, False)
    assert 40 * MiB <= result.peak_bytes <= 200 * MiB
    assert not Path(result.cgroup).exists()


@needs_cap
def test_resident_peak_counts_memory_not_page_cache(tmp_path: Path) -> None:
    held = rc.run_capped([sys.executable, "-c", "import time; data = b'x' * (60 * 2**20); "
                          "time.sleep(0.5)"], 200 * MiB)
    assert held.exit_status == 0
    assert 55 * MiB <= held.peak_resident_bytes <= 200 * MiB
    # A file larger than the cap fills the page cache, which the kernel reclaims.
    big = tmp_path / "big.bin"
    wrote = rc.run_capped([sys.executable, "-c", f"import os, time\nwith open({str(big)!r}, 'wb') "
                           "as f:\n    for _ in range(150): f.write(os.urandom(2**20))\n"
                           "time.sleep(0.5)"], 100 * MiB)
    assert (wrote.exit_status, wrote.oom_killed) == (0, False)
    assert big.stat().st_size == 150 * MiB
    assert wrote.peak_resident_bytes < 40 * MiB < wrote.peak_bytes


@needs_cap
def test_over_cap_is_oom_killed() -> None:
    result = rc.run_capped(_allocate(400), 100 * MiB)
    assert result.oom_killed
    assert (result.exit_status, result.signal) == (137, "SIGKILL")
    assert result.peak_bytes <= 100 * MiB
    assert not Path(result.cgroup).exists()


@needs_cap
def test_exit_status_passes_through() -> None:
    result = rc.run_capped([sys.executable, "-c", "raise SystemExit(3)"], 100 * MiB)
    assert (result.exit_status, result.oom_killed) == (3, False)


@needs_cap
def test_cli_prints_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    argv = [sys.executable, str(SCRIPT), "--memory", "100M", "--json", str(out), "--"]
    proc = subprocess.run([*argv, *_allocate(400)], capture_output=True, text=True, check=False)
    assert proc.returncode == 137
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("run_capped: method=") and "oom_killed=yes" in line
    report = json.loads(out.read_text())
    assert set(report) == {
        "method", "cgroup", "limit_bytes", "swap_bytes", "command", "exit_status", "signal",
        "wall_seconds", "peak_bytes", "peak_source", "peak_resident_bytes", "oom_killed",
        "oom_kills",
    }  # fmt: skip
    assert report["limit_bytes"] == 100 * MiB
    assert report["swap_bytes"] == 0
    assert report["exit_status"] == 137
    assert report["oom_killed"] is True
    assert report["wall_seconds"] > 0
