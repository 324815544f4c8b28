"""The work directory of ``ooc preprocess``: spilled data and resumable progress.

It lives beside the output (``<out>.ooc-work``).  ``state.json`` records
which steps finished and, for the first pass, a checkpoint after every
chunk; it is replaced atomically, so a run killed at any moment resumes
from the last recorded step.  A fingerprint of the settings and of the
inputs (size and modification time) guards against resuming someone
else's run.  The directory is removed once the dataset is committed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import ResumeError


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


class WorkDir:
    """Scratch space and step state of one preprocessing run."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], resume: bool) -> None:
        self.path = out.with_name(out.name + ".ooc-work")
        self.fingerprint = json.loads(json.dumps(fingerprint))
        state_file = self.path / "state.json"
        self.resumed = resume and state_file.exists()
        if self.resumed:
            self.state = json.loads(state_file.read_text())
            if self.state.get("fingerprint") != self.fingerprint:
                raise ResumeError(
                    f"{self.path}: this work directory belongs to a run with other settings "
                    "or other input files. Run again without --resume to start over.")
        else:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            self.state = {"fingerprint": self.fingerprint}
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
        shutil.rmtree(self.path, ignore_errors=True)
