"""Iterators that stop at any batch and resume, in another process, with exactly the
batches that were to come (issue 18 item 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ooc

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"shuffle": True, "seed": 5, "shuffle_window": 4}


def make(path: Path) -> Path:
    x = np.arange(10_000, dtype=np.float32).reshape(-1, 1)
    with ooc.create(path, "npy") as w:
        w.append("train", x, np.arange(10_000) % 3)
    return path


def test_stopped_after_batch_37_of_epoch_2_resumes_in_a_new_process(tmp_path):
    path = make(tmp_path / "ds")
    split = ooc.open(path).train
    straight = split.iter_batches(100, repeat=True, **OPTIONS)
    reference = [next(straight)[0].ravel().tolist() for _ in range(2 * 100 + 100 + 5)]

    stopped = split.iter_batches(100, repeat=True, **OPTIONS)
    for _ in range(2 * 100 + 37):
        next(stopped)
    state = json.dumps(stopped.get_state())
    assert json.loads(state)["epoch"] == 2 and json.loads(state)["position"] == 37
    script = textwrap.dedent(f"""
        import json, sys, ooc
        it = ooc.open({str(path)!r}).train.iter_batches(100, repeat=True, **{OPTIONS!r})
        it.set_state(json.loads(sys.argv[1]))
        print(json.dumps([next(it)[0].ravel().tolist() for _ in range(63 + 5)]))
    """)
    out = subprocess.run([sys.executable, "-c", script, state], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == reference[2 * 100 + 37:]


def test_one_epoch_ends_and_other_orders_are_refused(tmp_path):
    split = ooc.open(make(tmp_path / "ds")).train
    it = split.iter_batches(1000, **OPTIONS)
    for _ in range(4):
        next(it)
    state = it.get_state()
    assert len(list(it)) == 6 and list(it) == []  # one epoch, then done
    again = split.iter_batches(1000, **OPTIONS)
    again.set_state(state)
    assert len(list(again)) == 6
    for other in ({"seed": 6}, {"shuffle_window": 2}):
        with pytest.raises(ValueError, match="another order"):
            split.iter_batches(1000, **{**OPTIONS, **other}).set_state(state)
    with pytest.raises(ValueError, match="another order"):
        split.iter_batches(500, **OPTIONS).set_state(state)
    with pytest.raises(ValueError, match="outside an epoch"):
        split.iter_batches(1000, **OPTIONS).set_state({**state, "position": 11})
