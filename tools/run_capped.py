"""Run a command under a hard memory cap, the way a low-memory machine enforces it.

Usage::

    python tools/run_capped.py --memory 2G [--swap 0] [--json OUT] -- COMMAND [ARGS...]

The command runs in a fresh memory cgroup of its own, so the kernel accounts
every byte it (and its children) touch and OOM-kills it past the limit, exactly
as on a machine with that much RAM. Three methods are tried, first usable wins:

1. ``cgroup-v2``: a child of this process's cgroup (or of the hierarchy root) in
   the cgroup2 mount, with ``memory.max`` = limit and ``memory.swap.max`` = swap
   (0 by default, so the cap cannot be swapped around). cgroup v2 forbids
   processes in a cgroup that hands controllers to children, so only the
   command's process is moved into the new leaf, between fork and exec.
2. ``cgroup-v1``: a child in the ``memory`` hierarchy with
   ``memory.limit_in_bytes`` = limit and ``memory.memsw.limit_in_bytes`` =
   limit + swap; the command is moved in the same way.
3. ``systemd-run``: ``systemd-run --scope -p MemoryMax=... -p MemorySwapMax=...``
   where systemd is the init system.

When it finishes it prints one line to stderr (and with ``--json`` writes a
JSON object) with the method, the limit, the command's exit status, its wall
time, its peak memory as the cgroup accounted it, and whether it was OOM-killed;
the cgroup is then removed.  The cgroup's peak includes the page cache, which
the kernel fills up to the limit on any job that reads or writes a file larger
than the cap (and reclaims when the job needs the memory), so the report also
gives ``peak_resident``: the peak of anonymous memory plus mapped files
(``memory.stat``, polled every 50 ms) - what the processes themselves hold.
The exit status is the command's own, ``128 + N`` when it died of signal N
(so 137 when OOM-killed), 127 when the command does not exist, and 2 when no
cap can be set: the command is never run uncapped.

Sizes are binary: ``512M``, ``2G``, ``1.5GiB``, ``2GB`` (= 2 GiB, as in
systemd), ``100k``, or plain bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PREFIX = "run_capped"
CGROUP_NAME = f"ooc-run-capped-{os.getpid()}"
POLL_SECONDS = 0.05
V2_RESIDENT = ("anon", "file_mapped")
UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


class CapUnavailableError(RuntimeError):
    """No memory cap can be set on this machine; the message says what was tried."""


class CommandNotFoundError(FileNotFoundError):
    """The command to run does not exist or is not executable."""


@dataclass(frozen=True)
class RunResult:
    """What one capped run did, as printed and written with ``--json``."""

    method: str
    cgroup: str
    limit_bytes: int
    swap_bytes: int
    command: list[str]
    exit_status: int
    signal: str | None
    wall_seconds: float
    peak_bytes: int | None
    peak_source: str
    peak_resident_bytes: int | None
    oom_killed: bool
    oom_kills: int | None


def parse_size(text: str) -> int:
    """Parse a binary size such as ``"2G"``, ``"512M"``, ``"1.5GiB"`` or ``"1024"`` to bytes."""
    match = SIZE_RE.match(str(text))
    if not match:
        raise ValueError(
            f"Expected a size like 512M, 2G or 1.5GiB (binary units). Got {text!r} instead."
        )
    number, unit = match.groups()
    return int(float(number) * 1024 ** UNITS[unit.lower()])


def format_size(size: int | None) -> str:
    """Format bytes for humans: ``"200.0 MiB"``; ``"n/a"`` for None."""
    if size is None:
        return "n/a"
    if size < 1024:
        return f"{size} B"
    power = min(3, (size.bit_length() - 1) // 10)
    return f"{size / 1024**power:.1f} {('B', 'KiB', 'MiB', 'GiB')[power]}"


def _read(path: Path) -> str:
    return path.read_text().strip()


def _keyed_int(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed cgroup file (``memory.events``, ``oom_control``)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return None


def _resident(cgroup: Path, keys: tuple[str, ...]) -> int | None:
    """Sum of ``keys`` in the cgroup's ``memory.stat``; None where it cannot be read."""
    values = [_keyed_int(cgroup / "memory.stat", key) for key in keys]
    return None if not keys or None in values else sum(v or 0 for v in values)


def _max(a: int | None, b: int | None) -> int | None:
    """The larger of two optional numbers."""
    return b if a is None else a if b is None else max(a, b)


def _mounts(fstype: str) -> list[tuple[Path, set[str]]]:
    """(mount point, options) of every mount of ``fstype`` in /proc/self/mounts."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == fstype:
            found.append((Path(fields[1]), set(fields[3].split(","))))
    return found


def _own_cgroup(match: str) -> str | None:
    """This process's cgroup in the hierarchy whose controller field is ``match`` ("" = v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == match or match in controllers.split(","):
            return path
    return None


def _parents(mount: Path, own: str | None) -> list[Path]:
    """Where to create the cgroup: under our own cgroup first, then the hierarchy root."""
    candidates = [mount / own.lstrip("/")] if own and own != "/" else []
    return [*candidates, mount]


class CgroupCap:
    """A memory cgroup made for one command; subclasses name the files of v1 or v2."""

    method = ""
    limit_file = ""
    swap_file = ""
    peak_file = ""
    resident_keys: tuple[str, ...] = ()

    def __init__(self, path: Path, limit: int, swap: int) -> None:
        """Create the cgroup at ``path`` and set the limits; remove it again on failure."""
        self.path, self.limit, self.swap = path, limit, swap
        self.polled_peak: int | None = None
        self.resident_peak: int | None = None
        path.mkdir()
        try:
            self.set_limits()
        except OSError:
            self.remove()
            raise

    def set_limits(self) -> None:
        """Write the memory limit, then the swap limit where the kernel accounts swap."""
        (self.path / self.limit_file).write_text(str(self.limit))
        swap_path = self.path / self.swap_file
        if swap_path.exists():
            swap_path.write_text(self.swap_value())
        elif _swap_total() > 0:
            _warn(f"{swap_path.name} missing (swap accounting off): the cap may be swapped around")

    def swap_value(self) -> str:
        """The value for the swap file."""
        return str(self.swap)

    def wrap(self, command: list[str]) -> list[str]:
        """The argv to execute: the command itself."""
        return command

    def preexec(self) -> None:
        """In the child, between fork and exec: move this process into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def sample(self, pid: int) -> None:
        """Poll the resident memory, and ``memory.current`` where the kernel keeps no peak."""
        self.resident_peak = _max(self.resident_peak, _resident(self.path, self.resident_keys))
        if (self.path / self.peak_file).exists():
            return
        current = int(_read(self.path / "memory.current"))
        self.polled_peak = max(self.polled_peak or 0, current)

    def peak(self) -> tuple[int | None, str]:
        """Peak usage and the file it came from."""
        peak_path = self.path / self.peak_file
        if peak_path.exists():
            return int(_read(peak_path)), peak_path.name
        return self.polled_peak, "memory.current (polled)"

    def oom_kills(self) -> int | None:
        """How many processes the kernel OOM-killed in this cgroup."""
        raise NotImplementedError

    def remove(self) -> None:
        """Kill anything left in the cgroup, then remove it."""
        for _ in range(50):
            if not self.path.exists():
                return
            pids = _read(self.path / "cgroup.procs").split()
            for pid in pids:
                _kill(int(pid))
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.02)
        _warn(f"could not remove {self.path}")


class CgroupV2Cap(CgroupCap):
    """cgroup v2: ``memory.max``, ``memory.swap.max``, ``memory.peak``, ``memory.events``."""

    method = "cgroup-v2"
    limit_file = "memory.max"
    swap_file = "memory.swap.max"
    peak_file = "memory.peak"
    resident_keys = V2_RESIDENT

    def oom_kills(self) -> int | None:
        """The ``oom_kill`` count of ``memory.events``."""
        return _keyed_int(self.path / "memory.events", "oom_kill")


class CgroupV1Cap(CgroupCap):
    """cgroup v1: ``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, ``oom_control``."""

    method = "cgroup-v1"
    limit_file = "memory.limit_in_bytes"
    swap_file = "memory.memsw.limit_in_bytes"
    peak_file = "memory.max_usage_in_bytes"
    resident_keys = ("total_rss", "total_mapped_file")

    def swap_value(self) -> str:
        """memsw limits memory plus swap together."""
        return str(self.limit + self.swap)

    def oom_kills(self) -> int | None:
        """The ``oom_kill`` count of ``memory.oom_control`` (kernels >= 4.13)."""
        return _keyed_int(self.path / "memory.oom_control", "oom_kill")


class SystemdRunCap:
    """``systemd-run --scope``: systemd makes the cgroup; it is found and polled while running."""

    method = "systemd-run"

    def __init__(self, limit: int, swap: int) -> None:
        """Remember the limits; systemd creates and removes the scope."""
        self.limit, self.swap = limit, swap
        self.path = Path("(systemd scope)")
        self.polled_peak: int | None = None
        self.resident_peak: int | None = None
        self.polled_ooms: int | None = None

    def wrap(self, command: list[str]) -> list[str]:
        """Prefix the command with ``systemd-run --scope`` and the limits."""
        limits = ["-p", f"MemoryMax={self.limit}", "-p", f"MemorySwapMax={self.swap}"]
        return ["systemd-run", "--scope", "--quiet", "--collect", *limits, "--", *command]

    def preexec(self) -> None:
        """Nothing to do: systemd-run moves itself into the scope, then execs the command."""

    def sample(self, pid: int) -> None:
        """Read the scope's ``memory.peak``/``memory.current`` and ``memory.events``."""
        try:
            own = Path(f"/proc/{pid}/cgroup").read_text().split("0::", 1)[1].splitlines()[0]
            cgroup = Path("/sys/fs/cgroup") / own.lstrip("/")
            peak_path = cgroup / "memory.peak"
            if not peak_path.exists():
                peak_path = cgroup / "memory.current"
            self.path = cgroup
            self.polled_peak = max(self.polled_peak or 0, int(_read(peak_path)))
            self.polled_ooms = _keyed_int(cgroup / "memory.events", "oom_kill")
            self.resident_peak = _max(self.resident_peak, _resident(cgroup, V2_RESIDENT))
        except (OSError, IndexError, ValueError):
            return

    def peak(self) -> tuple[int | None, str]:
        """The last polled peak."""
        return self.polled_peak, "scope memory.peak (polled)"

    def oom_kills(self) -> int | None:
        """The last polled OOM-kill count."""
        return self.polled_ooms

    def remove(self) -> None:
        """Nothing to do: ``--collect`` makes systemd remove the scope."""


Cap = CgroupCap | SystemdRunCap


def _warn(message: str) -> None:
    print(f"{PREFIX}: warning: {message}", file=sys.stderr)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _swap_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _v2_parents(tried: list[str]) -> list[Path]:
    """Candidate parent cgroups in a cgroup2 mount whose memory controller can be used."""
    parents = []
    for mount, _ in _mounts("cgroup2"):
        try:
            controllers = _read(mount / "cgroup.controllers").split()
        except OSError as error:
            tried.append(f"cgroup v2 at {mount}: {error.strerror}")
            continue
        if "memory" not in controllers:
            tried.append(f"cgroup v2 at {mount}: no memory controller")
            continue
        parents += _parents(mount, _own_cgroup(""))
    return parents


def _enable_v2_memory(parent: Path) -> None:
    """Hand the memory controller to ``parent``'s children (fails if ``parent`` has processes)."""
    control = parent / "cgroup.subtree_control"
    if "memory" not in _read(control).split():
        control.write_text("+memory")


def _make_v2(limit: int, swap: int, tried: list[str]) -> Cap | None:
    for parent in _v2_parents(tried):
        try:
            _enable_v2_memory(parent)
            return CgroupV2Cap(parent / CGROUP_NAME, limit, swap)
        except OSError as error:
            busy = error.errno == errno.EBUSY
            hint = " (it holds processes: v2 no-internal-processes rule)" if busy else ""
            tried.append(f"cgroup v2 under {parent}: {error.strerror}{hint}")
    return None


def _make_v1(limit: int, swap: int, tried: list[str]) -> Cap | None:
    mounts = [mount for mount, options in _mounts("cgroup") if "memory" in options]
    if not mounts:
        tried.append("cgroup v1: no memory hierarchy mounted")
    for parent in _parents(mounts[0], _own_cgroup("memory")) if mounts else []:
        try:
            return CgroupV1Cap(parent / CGROUP_NAME, limit, swap)
        except OSError as error:
            tried.append(f"cgroup v1 under {parent}: {error.strerror}")
    return None


def _make_systemd(limit: int, swap: int, tried: list[str]) -> Cap | None:
    if shutil.which("systemd-run") is None:
        tried.append("systemd-run: not installed")
    elif not Path("/run/systemd/system").is_dir():
        tried.append("systemd-run: systemd is not the init system")
    else:
        return SystemdRunCap(limit, swap)
    return None


def make_cap(limit: int, swap: int = 0) -> Cap:
    """Set up a cap of ``limit`` bytes (+ ``swap``) by the first method that works.

    Raises
    ------
    CapUnavailableError
        If none works; the message lists each method tried and why it failed.
    """
    tried: list[str] = []
    for make in (_make_v2, _make_v1, _make_systemd):
        cap = make(limit, swap, tried)
        if cap is not None:
            return cap
    raise CapUnavailableError("cannot set a memory cap: " + "; ".join(tried))


def capping_method() -> str | None:
    """The method a run would use here (by creating and removing a probe), or None."""
    try:
        cap = make_cap(64 * 1024**2)
    except (CapUnavailableError, OSError):
        return None
    cap.remove()
    return cap.method


def resolve_command(command: list[str]) -> list[str]:
    """Check the command exists and is executable before any cgroup is made."""
    if not command:
        raise CommandNotFoundError("no command given: put it after '--'")
    program = command[0]
    path = shutil.which(program)
    if path is None:
        where = "" if os.sep in program else " on PATH"
        raise CommandNotFoundError(f"command not found{where}: {program!r}")
    return [path, *command[1:]]


def _start(argv: list[str], cap: Cap) -> subprocess.Popen[bytes]:
    """Start the command, moved into the cgroup between fork and exec."""
    try:
        return subprocess.Popen(cap.wrap(argv), preexec_fn=cap.preexec)
    except subprocess.SubprocessError as error:
        raise CapUnavailableError(f"could not move the command into {cap.path}: {error}") from None


def _wait(process: subprocess.Popen[bytes], cap: Cap) -> int:
    """Wait for the command, polling the cap's counters; pass Ctrl-C and SIGTERM on to it."""
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        while True:
            try:
                cap.sample(process.pid)
                return process.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_status(returncode: int) -> tuple[int, str | None]:
    """Shell-style exit status and signal name: 128 + N when killed by signal N."""
    if returncode >= 0:
        return returncode, None
    return 128 - returncode, signal.Signals(-returncode).name


def _oom_killed(cap: Cap, signame: str | None, peak: int | None) -> tuple[bool, int | None]:
    """OOM-killed per the cgroup's count, else by SIGKILL with the limit reached."""
    kills = cap.oom_kills()
    if kills is not None:
        return kills > 0, kills
    near_limit = peak is not None and peak >= 0.95 * cap.limit
    return signame == "SIGKILL" and near_limit, None


def run_capped(command: list[str], limit: int, swap: int = 0) -> RunResult:
    """Run ``command`` under a cap of ``limit`` bytes of memory (+ ``swap``) and report."""
    argv = resolve_command(command)
    cap = make_cap(limit, swap)
    try:
        start = time.perf_counter()
        process = _start(argv, cap)
        returncode = _wait(process, cap)
        wall = time.perf_counter() - start
        status, signame = _exit_status(returncode)
        peak, source = cap.peak()
        oom, kills = _oom_killed(cap, signame, peak)
    finally:
        cap.remove()
    return RunResult(
        method=cap.method,
        cgroup=str(cap.path),
        limit_bytes=limit,
        swap_bytes=swap,
        command=command,
        exit_status=status,
        signal=signame,
        wall_seconds=round(wall, 3),
        peak_bytes=peak,
        peak_source=source,
        peak_resident_bytes=cap.resident_peak,
        oom_killed=oom,
        oom_kills=kills,
    )


def summary_line(result: RunResult) -> str:
    """The one-line report printed to stderr."""
    signame = f" ({result.signal})" if result.signal else ""
    return (
        f"{PREFIX}: method={result.method} limit={format_size(result.limit_bytes)}"
        f" swap={format_size(result.swap_bytes)} exit={result.exit_status}{signame}"
        f" wall={result.wall_seconds:.2f}s peak={format_size(result.peak_bytes)}"
        f" peak_resident={format_size(result.peak_resident_bytes)}"
        f" oom_killed={'yes' if result.oom_killed else 'no'}"
    )


def _size_arg(text: str) -> int:
    """argparse type for sizes: the parse error becomes the usage message."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="run_capped.py",
        description="Run a command under a hard memory cap (cgroup v2, v1 or systemd-run).",
    )
    parser.add_argument("--memory", required=True, type=_size_arg, help="limit, e.g. 2G")
    parser.add_argument("--swap", default=0, type=_size_arg, help="swap allowed (default 0)")
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the capped command, report; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.memory < 1024**2:
        parser.error(f"Expected --memory of at least 1M. Got {args.memory} bytes instead.")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        result = run_capped(command, args.memory, args.swap)
    except CommandNotFoundError as error:
        print(f"{PREFIX}: error: {error}", file=sys.stderr)
        return 127
    except CapUnavailableError as error:
        print(f"{PREFIX}: error: {error}; not running the command uncapped", file=sys.stderr)
        return 2
    print(summary_line(result), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result.exit_status


if __name__ == "__main__":
    sys.exit(main())
