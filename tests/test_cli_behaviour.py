"""The command line as users meet it: Ctrl-C, help texts, pipes, progress in a log file."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import ooc
from ooc._report import progress_bar
from ooc.cli import build_parser, main

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


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_with_its_default():
    parser = build_parser()
    assert "main(argv" not in parser.format_help()
    assert "out-of-core" in parser.description
    subparsers = _subparsers(parser)
    assert set(subparsers) == {"preprocess", "explore", "demo", "info", "verify", "cache"}
    for name, sub in subparsers.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = sub._get_formatter()._expand_help(action)
            where = f"ooc {name} {action.option_strings or action.dest}"
            assert text.strip(), f"{where} has no help"
            if action.default not in (None, False) and action.option_strings:
                assert "(default: " in text, f"{where}: no default in {text!r}"
    help_text = subparsers["preprocess"].format_help()
    assert "examples:\n  ooc preprocess " in help_text
    words = " ".join(help_text.split())  # as wrapped to the terminal's width
    assert "(default: 1 GiB)" in words and "(default: 1 2)" in words


@pytest.mark.parametrize(("args", "expected"), [
    (["--workers", "0"], "argument --workers: expected an integer >= 1; got 0"),
    (["--memory-budget", "1M"], "argument --memory-budget: expected at least 16 MiB; got 1 MiB"),
    (["--val-split", "2"], "argument --val-split: expected a fraction in [0, 1); got 2.0"),
])
def test_usage_errors_name_the_option_in_one_line(args, expected, capsys):
    assert main(["preprocess", "in.csv", "--out", "out.h5", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ooc preprocess: error: ")
    assert expected in err and "1073741824" not in err


def test_output_into_a_closed_pipe_stops_quietly(textkit):
    corpus = textkit.corpus("c.csv", docs=400, seed=3, vocab=5000)
    # more than a pipe buffer holds, so the writer meets the closed pipe
    proc = ooc_process(["explore", str(corpus), "--top", "20000", "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first and "Traceback" not in err and err == "", err
    assert proc.returncode in (0, 141)


def _info(path: Path, capsys, *options: str) -> str:
    assert main(["info", str(path), *options]) == 0
    return capsys.readouterr().out


def test_info_counts_non_zeros_of_sparse_splits_only_with_separators(tmp_path, capsys):
    path = tmp_path / "d.h5"
    with ooc.create(path) as w:
        w.append("train", np.ones((1500, 3), dtype=np.int32), np.arange(1500) % 2)
        w.append("val", scipy.sparse.eye(1200, 3, format="csr", dtype=np.float32),
                 np.zeros(1200, dtype=np.int64))
    out = _info(path, capsys)
    train = next(line for line in out.splitlines() if "train:" in line)
    val = next(line for line in out.splitlines() if "val:" in line)
    assert "1,500 rows x 3 features, dense, int32" in train and "non-zeros" not in train
    assert "1,200 rows" in val and "3 non-zeros" in val
    assert "0=750, 1=750" in out


def test_info_of_a_sequence_dataset_shows_its_vocabulary(textkit, capsys):
    corpus = textkit.corpus("c.csv", docs=300, seed=4)
    textkit.preprocess(corpus, out="seq.h5", vectorizer="sequence", top_k=50, max_length=20)
    with ooc.open(textkit.tmp_path / "seq.h5") as ds:
        words = len(ds.vectorizer.words)
    out = _info(textkit.tmp_path / "seq.h5", capsys)
    assert f"vocab     {words:,} words" in out
    assert "non-zeros" not in out and "x 20 token ids, dense" in out


def test_info_json_is_one_machine_readable_object(textkit, capsys):
    corpus = textkit.corpus("c.csv", docs=300, seed=4)
    textkit.preprocess(corpus, out="seq.h5", vectorizer="sequence", top_k=50, max_length=20)
    info = json.loads(_info(textkit.tmp_path / "seq.h5", capsys, "--json"))
    train = info["splits"]["train"]
    assert train["columns"] == 20 and train["storage"] == "dense" and "non_zeros" not in train
    assert sum(train["labels"].values()) == train["rows"]
    assert info["vocabulary_size"] > 0 and info["format_version"] == 1
    assert info["metadata"]["vectorizer"]["kind"] == "sequence"


def test_progress_into_a_log_file_is_a_few_plain_lines(textkit):
    corpus = textkit.corpus("c.csv", docs=3000, seed=6)
    log = textkit.tmp_path / "log.txt"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-m", "ooc", "preprocess", str(corpus), "--out",
                        str(textkit.tmp_path / "out.h5"), "--workers", "1", "--chunk-rows", "50",
                        "--top-k", "500"], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                       stderr=stderr, check=True, timeout=120)
    text = log.read_text()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    # each bar: a line when it starts and one when it ends (it runs for under 10 s)
    assert 4 <= len(lines) <= 16, text
    assert all(" rows" in line for line in lines), text
    assert any(line.startswith("write: 100%") for line in lines), text


def test_progress_bar_writes_a_line_at_most_every_interval():
    stream = io.StringIO()  # not a terminal
    with progress_bar("rows", 100_000, file=stream) as bar:
        for _ in range(100_000):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 1 <= len(lines) <= 3
    assert "100,000" in lines[-1] or "100k/100k" in lines[-1]
