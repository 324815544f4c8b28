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
    assert "E0000" not in res.stderr


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
