"""ooc imports TensorFlow and Keras in one place, with their start-up log lines quieted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ooc._tensorflow import TF_LOG_LEVEL, import_keras, quiet_tensorflow_logs
from ooc.errors import MissingDependencyError

REPO = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"^\s*(import|from)\s+(tensorflow|keras)\b", re.MULTILINE)


def test_quiet_logs_sets_the_level_unless_the_user_did(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == TF_LOG_LEVEL
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tensorflow_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_only_the_helper_imports_tensorflow_or_keras():
    helper = REPO / "ooc" / "_tensorflow.py"
    files = [*(REPO / "ooc").rglob("*.py"), *(REPO / "tools").rglob("*.py")]
    offenders = [str(f.relative_to(REPO)) for f in files
                 if f != helper and IMPORT.search(f.read_text(encoding="utf-8"))]
    assert offenders == []
    assert IMPORT.search(helper.read_text(encoding="utf-8"))


def test_importing_the_tf_adapter_sets_the_level():
    pytest.importorskip("tensorflow")
    code = ("import os, ooc.tf_dataset as t; t.tf.constant(1) + 1; "  # an op probes the devices
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(REPO)}, check=True, timeout=300)
    assert res.stdout.strip() == TF_LOG_LEVEL
    # TensorFlow 2.21 logs "I0000 ... port.cc:153] oneDNN custom operations are on" and
    # "... cudart_stub.cc:31] Could not find cuda drivers" whatever the level
    assert not re.search(r"^[IWE]\d{4} |absl::InitializeLog", res.stderr, re.M), res.stderr


FILTERED = """
import os, sys
from ooc._tensorflow import native_stderr_quieted
with native_stderr_quieted():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\\n")
    os.write(2, b"I0000 00:00:1796333469.292887   25701 port.cc:153] oneDNN custom ops\\n")
    os.write(2, b"E0000 00:00:1796333469.293201   25701 cuda_executor.cc:31] cuInit\\n")
    os.write(2, b"a line of its own\\n")
    print("a Python line", file=sys.stderr)
"""


@pytest.mark.parametrize(("level", "kept"), [
    (None, ["a line of its own", "a Python line"]),
    ("0", ["WARNING: All log", "I0000", "E0000", "a line of its own", "a Python line"]),
])
def test_native_log_lines_are_dropped_at_level_3_and_the_rest_written_back(level, kept):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_CPP_MIN_LOG_LEVEL"] = level or TF_LOG_LEVEL
    res = subprocess.run([sys.executable, "-c", FILTERED], cwd=REPO, capture_output=True,
                         text=True, env={**env, "PYTHONPATH": str(REPO)}, check=True,
                         timeout=60)
    lines = res.stderr.splitlines()
    assert len(lines) == len(kept)
    assert all(line.startswith(start) for line, start in zip(lines, kept, strict=True))


@pytest.mark.parametrize(("version", "ok"), [("3.4.1", False), ("3.5.0", True), ("3.15.1", True),
                                             ("2.15.0", False)])
def test_a_keras_without_on_epoch_begin_is_refused(monkeypatch, version, ok):
    # Keras < 3.5 never calls PyDataset.on_epoch_begin, which the epoch shuffle needs
    fake = types.ModuleType("keras")
    fake.__version__ = version
    monkeypatch.setitem(sys.modules, "keras", fake)
    if ok:
        assert import_keras() is fake
    else:
        with pytest.raises(MissingDependencyError, match=r"keras>=3\.5"):
            import_keras()
