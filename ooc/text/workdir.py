"""The work directory of ``ooc preprocess``: spilled data and resumable progress.

It lives beside the output (``<out>.ooc-work``), or in ``--work-dir``
(``<work-dir>/<out's name>.ooc-work``); the functions here take the path
it is named after.  ``state.json`` records
which steps finished and, for the first pass, a checkpoint after every
chunk; it is replaced atomically, so a run killed at any moment resumes
from the last recorded step.  A fingerprint of the settings and of the
inputs (size and modification time) guards against resuming someone
else's run, and ``WORK_FORMAT``, the layout of the files, one made by
another version of ooc.  A run never deletes a work directory it did not
make unless told to (``restart``): an interrupted run's progress is the
user's.

The directory is removed once the dataset is committed: first renamed to
``<out>.ooc-work-removed`` (one atomic step), then deleted, so a run
stopped while deleting leaves either the whole work directory or that
obvious leftover.  ``run_id``, recorded in ``state.json`` and in the
dataset's config, tells whether a dataset at ``<out>`` was committed by
the run whose work directory is beside it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from .._report import bytes_on_disk, human_bytes
from ..errors import InterruptedRunError, ResumeError

_STEPS = ("tokenize", "vocab", "select", "shuffle")
# the layout of the work directory's files; 2: spilled counts are one run file per chunk;
# 3: a chunk's hits per shard (row, position, count) replace its triples
WORK_FORMAT = 3


def input_fingerprint(paths: list[str]) -> list[list[Any]]:
    """Path, size and modification time of every input file (directories walked)."""
    out = []
    for path in paths:
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            st = f.stat()
            out.append([str(f), st.st_size, st.st_mtime_ns])
    return out


def work_path(out: Path) -> Path:
    """The work directory of a run writing ``out``."""
    return out.with_name(out.name + ".ooc-work")


def _removing_path(out: Path) -> Path:
    """Where a work directory is moved to be deleted."""
    return out.with_name(out.name + ".ooc-work-removed")


def read_state(out: Path, removing: bool = False) -> dict[str, Any] | None:
    """The recorded state of the work directory beside ``out``, if there is one.

    With ``removing``, also of a work directory that was being deleted
    (its ``state.json`` goes last).
    """
    for directory in (work_path(out), _removing_path(out))[: 1 + removing]:
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            continue
        return state if isinstance(state, dict) else None
    return None


def same_fingerprint(state: dict[str, Any], fingerprint: dict[str, Any]) -> bool:
    """Whether ``state`` was recorded by a run with these settings and inputs."""
    return state.get("fingerprint") == json.loads(json.dumps(fingerprint))


def discard(out: Path) -> None:
    """Delete the work directory beside ``out`` (and what an earlier deletion left).

    It is first renamed, in one step, and its ``state.json`` is deleted last,
    so that a run stopped meanwhile leaves a leftover that still says whose it
    was (:func:`read_state` with ``removing``).
    """
    path, removing = work_path(out), _removing_path(out)
    if path.exists():
        if removing.exists():
            shutil.rmtree(removing)
        os.replace(path, removing)
    if not removing.exists():
        return
    for entry in removing.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != "state.json":
            entry.unlink()
    (removing / "state.json").unlink(missing_ok=True)
    removing.rmdir()


def _progress(state: dict[str, Any] | None) -> str:
    """Which passes a work directory's state says are done."""
    if state is None:
        return "no progress recorded"
    done = [step for step in _STEPS if state.get(step)]
    chunks = (state.get("tokenize_checkpoint") or {}).get("chunks")
    if not state.get("tokenize") and chunks:
        done.append(f"{chunks} chunks of tokenize")
    return "passes done: " + (", ".join(done) or "none")


class WorkDir:
    """Scratch space and step state of one preprocessing run."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], resume: bool,
                 restart: bool = False) -> None:
        self.out, self.path = out, work_path(out)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        state = read_state(out)
        self.resumed = resume and state is not None
        if self.resumed:
            self.state = state
            if state.get("work_format", 1) != WORK_FORMAT:
                raise ResumeError(
                    f"{self.path}: this work directory was made by another version of ooc "
                    f"(work format {state.get('work_format', 1)}, this one reads "
                    f"{WORK_FORMAT}). Run again with --restart (instead of --resume) to "
                    "discard it and start over.")
            if not same_fingerprint(state, fingerprint):
                raise ResumeError(
                    f"{self.path}: this work directory belongs to a run with other settings "
                    "or other input files. Run again with --restart (instead of --resume) to "
                    "discard it and start over.")
            self.state.setdefault("run_id", secrets.token_hex(8))
        else:
            if self.path.exists() and not (restart or resume):
                raise InterruptedRunError(
                    f"{self.path}: an interrupted run left this work directory "
                    f"({human_bytes(bytes_on_disk(self.path))}, {_progress(state)}). Pass "
                    "--resume to continue it, or --restart to discard it and start over.")
            discard(out)
            self.path.mkdir(parents=True)
            self.state = {"fingerprint": self.fingerprint, "run_id": secrets.token_hex(8),
                          "work_format": WORK_FORMAT}
            self._write()

    def get(self, step: str) -> Any:
        """What ``step`` recorded, or None if it has not finished."""
        return self.state.get(step)

    def save(self, step: str, value: Any) -> None:
        """Record ``step`` (atomically)."""
        self.state[step] = value
        self._write()

    def _write(self) -> None:
        tmp = self.path / "state.json.tmp"
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path / "state.json")

    def fresh(self, name: str) -> Path:
        """An empty subdirectory (whatever an unfinished step left there is removed)."""
        directory = self.path / name
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        return directory

    def remove(self) -> None:
        """Delete the work directory."""
        discard(self.out)
