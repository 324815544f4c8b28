"""tools/bench_preprocess.py runs end to end on a tiny corpus and finds parity on each path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ooc import _platform

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_preprocess.py"


@pytest.mark.parametrize(("vectorizer", "reference", "module", "unit"), [
    ("ngram", "sklearn", "sklearn", "features"),
    # TensorFlow's import makes this one slow
    pytest.param("sequence", "tf_keras", "tf_keras", "words", marks=pytest.mark.slow),
])
def test_bench_preprocess_reports_parity(tmp_path, vectorizer, reference, module, unit):
    pytest.importorskip(module)
    args = [sys.executable, str(TOOL), "--dir", str(tmp_path), "--docs", "400", "--words", "40",
            "--repeats", "1", "--repeats-large", "0", "--workers", "1",
            "--vectorizer", vectorizer]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"--vectorizer {vectorizer}: ooc against {reference}" in run.stdout
    results = json.loads(next(tmp_path.glob("bench_preprocess*.json")).read_text())
    assert (results["vectorizer"], results["reference"]) == (vectorizer, reference)
    ooc_row, ref_row = results["rows"]
    assert (ooc_row["pipeline"], ref_row["pipeline"]) == ("ooc -w1", reference)
    pattern = rf"same \d+ {unit}, \d+ train \+ \d+ val rows equal"
    assert re.fullmatch(pattern, ooc_row["parity"]), ooc_row["parity"]
    assert ooc_row["documents_per_s"] > 0 and ref_row["documents_per_s"] > 0
    if _platform.PROC_FS:  # the peaks are read from /proc
        assert ooc_row["peak_tree_pss"] > 0 and ref_row["peak_tree_pss"] > 0
