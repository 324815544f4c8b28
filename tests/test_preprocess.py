"""``ooc preprocess`` end to end: inputs, hostile CSV, leakage, split, shuffle, resume,
memory budget, output formats; unit tests of the exact spilled counts and the hash index.

Parity with scikit-learn and Keras is in ``tests/test_vectorizers.py``.
"""

from __future__ import annotations

import csv
import ctypes
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import load_tool
from hypothesis import given, settings
from hypothesis import strategies as st

import ooc.preprocess
import ooc.text.counts
import ooc.text.jobs
import ooc.text.ngram_fit
import ooc.text.tokenize_pass
from ooc import _platform
from ooc.cli import main
from ooc.errors import CorpusError, InterruptedRunError, ResumeError
from ooc.preprocess import PreprocessConfig
from ooc.text.counts import SpilledCounts
from ooc.text.hashindex import HashIndex
from ooc.text.jobs import WorkerPool
from ooc.text.ngram_vectorizer import NgramVectorizer

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--workers", "1", "--quiet", "--chunk-rows", "256"]


def cli(args: list[str]) -> int:
    """``ooc preprocess ARGS`` in this process; the exit status."""
    return main(["preprocess", *args])


def work_dir(out: Path) -> Path:
    return out.with_name(out.name + ".ooc-work")


def one_line(text: str) -> str:
    """The single line of ``text`` (fails if there are several)."""
    lines = text.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    return lines[0]


def flat(texts: list[str]) -> list[str]:
    """Texts without line breaks, so that every CSV record is one physical line."""
    return [t.replace("\n", " ") for t in texts]


# ------------------------------------------------------------------ inputs
def test_every_input_format_and_compression_gives_the_same_dataset(textkit):
    # class-sorted, so the folder tree (class by class, files by name) is in source order
    options = {"docs": 360, "classes": 3, "sorted_by_class": True, "seed": 21}
    names = ["c.csv", "c.tsv", "c.jsonl", "tree", "c.csv.gz", "c.csv.bz2", "c.csv.xz"]
    datasets = []
    for name in names:
        corpus = textkit.corpus(name, **options)
        textkit.preprocess(corpus, out=f"{name}.h5", top_k=500)
        datasets.append(textkit.load(f"{name}.h5"))
    first = datasets[0]
    assert first.classes == ["class_0", "class_1", "class_2"]
    assert sum(len(s.row_ids) for s in first.splits.values()) == 360
    for name, other in zip(names[1:], datasets[1:], strict=True):
        try:
            textkit.assert_same(first, other)
        except AssertionError as err:
            raise AssertionError(f"{name} differs from c.csv: {err}") from err


def test_python_api_gives_the_cli_dataset(textkit):
    texts, labels = textkit.docs(400, seed=8)
    path = textkit.write_csv("c.csv", texts, labels)
    options = ["--top-k", "300", "--ngram-range", "1", "1", "--val-split", "0.25", "--seed", "5"]
    assert cli([str(path), "--out", str(textkit.tmp_path / "cli.h5"), *options, *QUICK]) == 0
    summary = ooc.preprocess_text(path, textkit.tmp_path / "api.h5", top_k=300,
                                  ngram_range=[1, 1], val_split=0.25, seed=5, workers=1,
                                  progress=False, chunk_rows=256)
    assert isinstance(summary, ooc.preprocess.Summary) and sum(summary.rows.values()) == 400
    textkit.assert_same(textkit.load("cli.h5"), textkit.load("api.h5"))
    with pytest.raises(TypeError, match="takes the options .*top_k.*; got topk"):
        ooc.preprocess_text(path, textkit.tmp_path / "x.h5", topk=3)
    light = "import sys, ooc; assert 'ooc.preprocess' not in sys.modules; ooc.preprocess_text"
    subprocess.run([sys.executable, "-c", light], check=True, cwd=REPO)


def test_several_inputs_form_one_corpus(textkit):
    texts, labels = textkit.docs(700, seed=22)
    whole = textkit.write_csv("whole.csv", texts, labels)
    part1 = textkit.write_csv("part1.csv", texts[:301], labels[:301])
    part2 = textkit.tmp_path / "part2.jsonl"
    part2.write_text("".join(json.dumps({"label": y, "text": t}) + "\n"
                             for t, y in zip(texts[301:], labels[301:], strict=True)))
    textkit.preprocess(whole, out="whole.h5", top_k=800, chunk_rows=128)
    textkit.preprocess([part1, part2], out="parts.h5", top_k=800, chunk_rows=128)
    a, b = textkit.load("whole.h5"), textkit.load("parts.h5")
    textkit.assert_same(a, b)
    ids = np.concatenate([s.row_ids for s in b.splits.values()])
    np.testing.assert_array_equal(np.sort(ids), np.arange(700))


def test_two_text_columns_are_joined(textkit):
    corpus = textkit.corpus("titled.csv", docs=400, title=True, seed=23)
    with open(corpus, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    joined = textkit.write_csv("joined.csv", [f"{r['title']} {r['text']}" for r in rows],
                               [r["label"] for r in rows])
    out = textkit.tmp_path / "titled.h5"
    code = cli([str(corpus), "--out", str(out), "--text-column", "title", "text",
                 "--top-k", "600", *QUICK])
    assert code == 0
    textkit.preprocess(joined, out="joined.h5", top_k=600, chunk_rows=256)
    textkit.assert_same(textkit.load("titled.h5"), textkit.load("joined.h5"))
    # and the titles matter: text alone gives other features
    textkit.preprocess(corpus, out="text.h5", top_k=600, chunk_rows=256)
    assert textkit.load("text.h5").feature_names != textkit.load("titled.h5").feature_names


@pytest.mark.parametrize("name", ["ints.csv", "ints.jsonl"])
def test_integer_labels_are_sorted_numerically(textkit, name):
    corpus = textkit.corpus(name, docs=900, classes=12, int_labels=True, seed=24)
    textkit.preprocess(corpus, top_k=300)
    ds = textkit.load("out.h5")
    assert ds.classes == [str(k) for k in range(12)]  # not 0, 1, 10, 11, 2, ...
    _, labels = textkit.docs(900, classes=12, int_labels=True, seed=24)
    for split in ds.splits.values():
        assert [ds.classes[k] for k in split.y.tolist()] == [labels[i] for i in split.row_ids]


# ------------------------------------------------------------- hostile CSV
def hostile_good_csv(textkit) -> tuple[Path, list[str], list[str]]:
    """BOM, CRLF line ends, quoted fields with newlines, quotes and commas."""
    texts, labels = textkit.docs(60, seed=25, classes=2)
    texts = flat(texts)
    texts[3] = 'A "quoted" word, a comma,\r\nand a second line\nand a third "line"'
    texts[10] = "multi\r\n\r\nline with a blank line inside"
    body = "label,text\r\n" + "".join(quoted(y, t, "\r\n")
                                       for y, t in zip(labels, texts, strict=True))
    path = textkit.tmp_path / "hostile.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    return path, texts, labels


def test_bom_crlf_and_multiline_quoted_fields_parse(textkit, capsys):
    path, texts, labels = hostile_good_csv(textkit)
    out = textkit.tmp_path / "out.h5"
    assert cli([str(path), "--out", str(out), "--top-k", "500", *QUICK]) == 0
    ds = textkit.load(out)
    ids = np.concatenate([s.row_ids for s in ds.splits.values()])
    np.testing.assert_array_equal(np.sort(ids), np.arange(60))  # one row per record
    assert ds.classes == sorted(set(labels))
    # every stored row is the vectorized text of its whole record
    for split in ds.splits.values():
        again = ds.vectorizer.transform([texts[i] for i in split.row_ids])
        assert abs(again - split.x).max() <= 1e-6
    assert "wrote" in capsys.readouterr().out


BAD_RECORDS = {
    "invalid UTF-8": (b"class_1,some bad \xff\xfe bytes here\n", "invalid UTF-8"),
    "empty text": (b"class_0,\n", "empty text"),
    "blank text": (b'class_0,"   "\n', "empty text"),
    "missing label": (b",a text without a label\n", "missing label"),
    "ragged row": (b"class_1,a text,and an extra field\n", "ragged row"),
}
CUT_OFF = (b'class_1,"this quoted field is cut off\nin the middle of', "unterminated quoted")


def quoted(label: str, text: str, end: str = "\n") -> str:
    """One CSV record with the text quoted."""
    return '{},"{}"{}'.format(label, text.replace('"', '""'), end)


def bad_csv(textkit, case: str) -> tuple[Path, int, int]:
    """A clean 80-row CSV with one bad record: ``(path, its line, its row id)``."""
    texts, labels = textkit.docs(80, seed=26, classes=2)
    lines = [b"label,text\n"] + [quoted(y, t).encode() for y, t in
                                  zip(labels, flat(texts), strict=True)]
    if case == "cut off mid-row":
        record, at = CUT_OFF[0], len(lines)  # the last record
    else:
        record, at = BAD_RECORDS[case][0], 31
    lines.insert(at, record)
    path = textkit.tmp_path / "bad.csv"
    path.write_bytes(b"".join(lines))
    return path, at + 1, at - 1


BAD_CASES = [*BAD_RECORDS, "cut off mid-row"]


def reason_of(case: str) -> str:
    return CUT_OFF[1] if case == "cut off mid-row" else BAD_RECORDS[case][1]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_row_stops_with_file_and_line(textkit, capsys, case):
    path, line, _ = bad_csv(textkit, case)
    out = textkit.tmp_path / "out.h5"
    assert cli([str(path), "--out", str(out), "--top-k", "300", *QUICK]) != 0
    err = one_line(capsys.readouterr().err)
    assert f"{path}:{line}:" in err and reason_of(case) in err
    assert not out.exists() and not work_dir(out).exists()


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_row_is_skipped_counted_and_listed(textkit, capsys, case):
    path, line, row_id = bad_csv(textkit, case)
    out = textkit.tmp_path / "out.h5"
    code = cli([str(path), "--out", str(out), "--top-k", "300", "--on-bad-row", "skip",
                 *QUICK])
    assert code == 0
    summary = capsys.readouterr().out
    skipped = [s for s in summary.splitlines() if s.strip().startswith("skipped")]
    lines = CUT_OFF[0].count(b"\n") + 1 if case == "cut off mid-row" else 1  # each one listed
    assert len(skipped) == 1 and f" {lines} bad row" in skipped[0]
    rejects = out.with_name(out.name + ".rejects.csv")
    assert str(rejects) in skipped[0]
    with open(rejects, newline="", encoding="utf-8") as f:
        listed = list(csv.DictReader(f))
    assert [(r["path"], int(r["line"])) for r in listed] == [(str(path), line + k)
                                                              for k in range(lines)]
    assert reason_of(case) in listed[0]["reason"]
    ds = textkit.load(out)
    ids = np.sort(np.concatenate([s.row_ids for s in ds.splits.values()]))
    np.testing.assert_array_equal(ids, np.delete(np.arange(81), row_id))
    assert not work_dir(out).exists()


def test_progress_shows_each_tokenize_step_once(textkit, capsys):
    # every refresh is a line of its own in a log file; the estimated total
    # changes with each chunk read, and must not add lines (a log file gets a
    # line at most every LOG_INTERVAL_S, so this short run shows start and end)
    path = textkit.corpus("c.csv", 3000)
    assert cli([str(path), "--out", str(textkit.tmp_path / "d.h5"),
                "--workers", "1", "--chunk-rows", "100"]) == 0
    err = capsys.readouterr().err
    shown = re.findall(r"tokenize:[^|\r\n]*\|[^|]*\|\s*([\d.]+[kM]?)/", err)
    assert len(shown) >= 1 and err.count("tokenize:") <= 3, err
    # (closing the bar shows its last state again)
    assert all(a != b for a, b in itertools.pairwise(shown[:-1])), shown


def test_no_rejects_file_without_bad_rows(textkit):
    texts, labels = textkit.docs(100, seed=27)
    path = textkit.write_csv("c.csv", texts, labels)
    summary = textkit.preprocess(path, top_k=300, on_bad_row="skip")
    assert summary.skipped == 0 and summary.rejects is None
    assert not (textkit.tmp_path / "out.h5.rejects.csv").exists()


def corpus_error_inputs(textkit, case: str) -> tuple[list[str], str]:
    """Inputs (and extra flags) for a corpus that cannot be used, and the words of its error."""
    texts, labels = textkit.docs(120, seed=28, classes=3)
    if case == "unseen validation label":
        train = textkit.write_csv("train.csv", texts[:100], labels[:100])
        val = textkit.write_csv("val.csv", texts[100:], ["class_9"] * 20)
        return [str(train), "--val", str(val)], "never seen in training"
    if case == "one class":
        return [str(textkit.write_csv("one.csv", texts, ["same"] * 120))], "at least 2"
    if case == "min_df above every count":
        path = textkit.write_csv("c.csv", texts, labels)
        return [str(path), "--min-df", "1000"], "min_df=1000"
    if case == "empty corpus":
        path = textkit.tmp_path / "empty.csv"
        path.write_text("label,text\n")
        return [str(path)], "no training rows"
    if case == "every row skipped":
        path = textkit.tmp_path / "allbad.csv"
        path.write_text("label,text\n,no label\n,none here\n")
        return [str(path), "--on-bad-row", "skip"], "no training rows"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["unseen validation label", "one class", "empty corpus",
                                  "every row skipped", "min_df above every count"])
def test_unusable_corpus_is_a_clear_error_and_leaves_nothing(textkit, capsys, case):
    args, words = corpus_error_inputs(textkit, case)
    out = textkit.tmp_path / "out.h5"
    assert cli([*args, "--out", str(out), *QUICK]) != 0
    err = one_line(capsys.readouterr().err)
    assert err.startswith("ooc preprocess: error:") and words in err
    assert not out.exists() and not work_dir(out).exists()
    assert sorted(p.name for p in textkit.tmp_path.iterdir() if "out" in p.name) in (
        [], ["out.h5.rejects.csv"])


def test_labels_that_look_like_digits_but_are_not_integers(textkit):
    texts, labels = textkit.docs(200, seed=44, classes=2)
    path = textkit.write_csv("c.csv", texts, ["1" if y == "class_0" else "²" for y in labels])
    textkit.preprocess(path, top_k=100)
    assert textkit.load("out.h5").classes == ["1", "²"]


def test_unseen_validation_label_from_the_split_is_an_error(textkit):
    # a class with one row: when the split puts it in validation, training never sees it
    texts, labels = textkit.docs(300, seed=29, classes=2)
    first = textkit.write_csv("probe.csv", texts, labels)
    textkit.preprocess(first, out="probe.h5", top_k=200)
    val_id = int(textkit.load("probe.h5").splits["val"].row_ids[0])
    labels[val_id] = "lonely"
    path = textkit.write_csv("c.csv", texts, labels)
    with pytest.raises(CorpusError, match="lonely"):
        textkit.preprocess(path, top_k=200)
    assert not (textkit.tmp_path / "out.h5").exists()
    assert not work_dir(textkit.tmp_path / "out.h5").exists()


# ----------------------------------------------------------------- leakage
LEAK, TRAIN_ONLY = "valonlyword", "trainonlyword"


def test_words_seen_only_in_validation_never_enter_the_vocabulary(textkit):
    texts, labels = textkit.docs(1200, seed=30)
    probe = textkit.write_csv("probe.csv", texts, labels)
    textkit.preprocess(probe, out="probe.h5", top_k=100)
    split = textkit.load("probe.h5").splits
    val_ids, train_ids = split["val"].row_ids, split["train"].row_ids
    marked = list(texts)
    for i in val_ids[:60]:  # frequent and class-dependent: F selection would love it
        if labels[i] == "class_0":
            marked[i] = f"{LEAK} {LEAK} {LEAK} ʬʬʬ {marked[i]}"
    for i in train_ids[:60]:
        marked[i] = f"{TRAIN_ONLY} {marked[i]}"
    path = textkit.write_csv("marked.csv", marked, labels)
    for out, options in [("word.h5", {}), ("char.h5", {"analyzer": "char"}),
                         ("seq.h5", {"vectorizer": "sequence"})]:
        textkit.preprocess(path, out=out, top_k=100_000, **options)
        ds = textkit.load(out)
        np.testing.assert_array_equal(np.sort(ds.splits["val"].row_ids), np.sort(val_ids))
        vec = ds.vectorizer
        if options.get("vectorizer") == "sequence":
            vocabulary = vec.words
        elif options.get("analyzer") == "char":
            vocabulary = list(ds.feature_names)
            assert not any("ʬ" in name for name in vocabulary)
            continue
        else:
            vocabulary = vec.tokens
            assert not any(LEAK in name for name in ds.feature_names)
            assert any(TRAIN_ONLY in name for name in ds.feature_names)
        assert LEAK not in vocabulary and TRAIN_ONLY in vocabulary, out


# -------------------------------------------------------- split and shuffle
def split_ids(textkit, out: str) -> tuple[np.ndarray, np.ndarray]:
    s = textkit.load(out).splits
    return np.sort(s["train"].row_ids), np.sort(s["val"].row_ids)


def test_split_is_seeded_stable_and_about_val_split(textkit):
    corpus = textkit.corpus("c.csv", docs=2000, seed=31)
    textkit.preprocess(corpus, out="a.h5", top_k=300, val_split=0.3, seed=5)
    textkit.preprocess(corpus, out="b.h5", top_k=300, val_split=0.3, seed=5, chunk_rows=333)
    textkit.preprocess(corpus, out="c.h5", top_k=300, val_split=0.3, seed=6)
    textkit.assert_same(textkit.load("a.h5"), textkit.load("b.h5"))
    train_a, val_a = split_ids(textkit, "a.h5")
    _, val_c = split_ids(textkit, "c.h5")
    assert not np.array_equal(val_a, val_c)
    assert abs(len(val_a) / 2000 - 0.3) < 0.04 and abs(len(val_c) / 2000 - 0.3) < 0.04
    assert len(np.intersect1d(train_a, val_a)) == 0


def test_val_split_zero_gives_only_training_rows(textkit):
    corpus = textkit.corpus("c.csv", docs=200, seed=32)
    summary = textkit.preprocess(corpus, top_k=100, val_split=0.0)
    ds = textkit.load("out.h5")
    assert list(ds.splits) == ["train"] and summary.rows == {"train": 200}


def test_explicit_validation_inputs(textkit):
    texts, labels = textkit.docs(500, seed=33)
    train = textkit.write_csv("train.csv", texts[:400], labels[:400])
    val = textkit.write_csv("val.csv", texts[400:], labels[400:])
    textkit.preprocess(train, top_k=300, val_inputs=(str(val),))
    ds = textkit.load("out.h5")
    train, val = ds.splits["train"], ds.splits["val"]
    np.testing.assert_array_equal(np.sort(train.row_ids), np.arange(400))
    # validation row ids count the rows of the validation inputs (from 0 or after training)
    offset = 400 if val.row_ids.min() >= 400 else 0
    np.testing.assert_array_equal(np.sort(val.row_ids), np.arange(100) + offset)
    assert [ds.classes[k] for k in val.y] == [labels[400 + i - offset] for i in val.row_ids]


def class_mix_is_uniform(y: np.ndarray, n_classes: int, batch: int = 64) -> None:
    """Every full batch holds >= 3 classes and no class above 60%."""
    for start in range(0, len(y) - batch + 1, batch):
        counts = np.bincount(y[start:start + batch], minlength=n_classes)
        assert (counts > 0).sum() >= 3, f"batch at {start}: {counts}"
        assert counts.max() <= 0.6 * batch, f"batch at {start}: {counts}"


@pytest.mark.parametrize("bucket_rows", [None, 250])
def test_class_sorted_source_gives_mixed_batches(textkit, monkeypatch, bucket_rows):
    if bucket_rows is not None:  # several shuffle buckets, as a large corpus would have
        monkeypatch.setattr(ooc.preprocess, "_bucket_rows", lambda run, tok: bucket_rows)
    corpus = textkit.corpus("sorted.csv", docs=3000, classes=5, sorted_by_class=True,
                            seed=34)
    textkit.preprocess(corpus, top_k=300)
    ds = textkit.load("out.h5")
    for name, split in ds.splits.items():
        class_mix_is_uniform(split.y, 5)
        ids = split.row_ids
        assert len(np.unique(ids)) == len(ids)
        assert not np.all(np.diff(ids) > 0), name
        # positions and row ids are uncorrelated
        assert abs(np.corrcoef(np.arange(len(ids)), ids)[0, 1]) < 0.1, name
    # tools/class_mix.py shows the same: one class per source batch, the overall mix after
    tool = load_tool(REPO / "tools" / "class_mix.py", "_ooc_tests_class_mix")
    source, stored, overall = tool.class_mix(ds.splits["train"], 64, 5)
    assert (source.counts[:3].max(axis=1) == 64).all()
    assert stored.every_class() > 0.95 and source.every_class() < 0.1
    expected = tool.random_deviation(overall, 64)
    assert 0.7 * expected < stored.deviation(overall) < 1.3 * expected < source.deviation(overall)
    # the unshuffled dataset is class-sorted, so the check above can fail
    textkit.preprocess(corpus, out="plain.h5", top_k=300, shuffle=False)
    plain = textkit.load("plain.h5")
    for split in plain.splits.values():
        assert np.all(np.diff(split.row_ids) > 0)
    with pytest.raises(AssertionError):
        class_mix_is_uniform(plain.splits["train"].y, 5)
    textkit.assert_same(ds, plain, by_row_id=True)
    # ooc.create(shuffle=True) with preprocess's seed writes preprocess's order
    with ooc.create(textkit.tmp_path / "rewritten.h5", shuffle=True, seed=123) as w:
        w.set_metadata(classes=plain.classes, feature_names=plain.feature_names)
        for name, split in plain.splits.items():
            for a in range(0, len(split.y), 700):
                w.append(name, split.x[a:a + 700], split.y[a:a + 700], split.row_ids[a:a + 700])
    textkit.assert_same(ds, textkit.load("rewritten.h5"))


def test_workers_do_not_change_the_dataset(textkit):
    corpus = textkit.corpus("c.csv", docs=1500, seed=35)
    one = textkit.preprocess(corpus, out="one.h5", top_k=500, chunk_rows=200)
    two = textkit.preprocess(corpus, out="two.h5", top_k=500, chunk_rows=200, workers=2)
    textkit.assert_same(textkit.load("one.h5"), textkit.load("two.h5"))
    # the summary's worker peak is read from the live workers' VmHWM (0: unknown)
    low = 10 << 20 if _platform.PROC_FS else -1
    assert one.peak_rss_workers == 0 and low < two.peak_rss_workers < 1 << 30


# ------------------------------------------------------------------ resume
def state_of(out: Path) -> dict:
    try:
        return json.loads((work_dir(out) / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ooc", "preprocess", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(proc: subprocess.Popen, out: Path, reached, timeout: float = 60) -> dict:
    """SIGKILL ``proc`` as soon as its work directory state satisfies ``reached``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = state_of(out)
        if state and reached(state):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
            assert not out.exists()
            return state
        if proc.poll() is not None:
            raise AssertionError("the run ended before it could be killed: "
                                 f"{proc.returncode} {proc.stderr.read().decode()}")
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("the run never reached the state to kill it in")


def mid_tokenize(state: dict) -> bool:
    return (state.get("tokenize_checkpoint") or {}).get("chunks", 0) >= 3


@pytest.mark.slow
def test_resume_after_sigkill_at_every_pass_equals_an_uninterrupted_run(textkit, capsys):
    corpus = textkit.corpus("c.csv", docs=5000, seed=36, words_per_doc=40, vocab=5000)
    out = textkit.tmp_path / "resumed.h5"
    args = [str(corpus), "--out", str(out), "--top-k", "2000", "--workers", "1", "--quiet",
            "--chunk-rows", "125"]
    kill_when(start(args), out, mid_tokenize)
    # killed mid-tokenize; resume, then kill again once tokenizing is done, ...
    state = kill_when(start([*args, "--resume"]), out, lambda s: "tokenize" in s)
    assert state["tokenize_checkpoint"]["chunks"] == 40
    kill_when(start([*args, "--resume"]), out, lambda s: "vocab" in s)
    kill_when(start([*args, "--resume"]), out, lambda s: "shuffle" in s)
    # changed settings: a clear error, and the work directory is kept
    assert cli([*args, "--resume", "--top-k", "1999"]) != 0
    err = one_line(capsys.readouterr().err)
    assert "other settings" in err and "--restart" in err
    assert work_dir(out).exists()
    assert cli([*args, "--resume"]) == 0
    assert "(resumed)" in capsys.readouterr().out
    assert not work_dir(out).exists()
    textkit.preprocess(corpus, out="straight.h5", top_k=2000, chunk_rows=125)
    textkit.assert_same(textkit.load("straight.h5"), textkit.load(out))


@pytest.mark.slow
def test_resume_after_sigkill_sequence_vectorizer(textkit):
    corpus = textkit.corpus("c.csv", docs=6000, seed=37, words_per_doc=40, vocab=5000)
    out = textkit.tmp_path / "resumed.h5"
    args = [str(corpus), "--out", str(out), "--vectorizer", "sequence", "--top-k", "1000",
            "--max-length", "30", "--workers", "1", "--quiet", "--chunk-rows", "150"]
    kill_when(start(args), out, mid_tokenize)
    config = PreprocessConfig(inputs=(str(corpus),), out=str(out), vectorizer="sequence",
                              top_k=1000, max_length=30, chunk_rows=150, resume=True,
                              workers=2, progress=False)
    assert ooc.preprocess.preprocess(config).resumed
    textkit.preprocess(corpus, out="straight.h5", vectorizer="sequence", top_k=1000,
                       max_length=30, chunk_rows=150)
    textkit.assert_same(textkit.load("straight.h5"), textkit.load(out))


class Crash(BaseException):
    """A crash injected into a run (not an OocError, so the work directory is kept)."""


CRASH_POINTS = {
    # after a chunk's counts were spilled, before its checkpoint: resume must undo them
    "tokenize": (ooc.text.tokenize_pass, "save_chunk", 4),
    "feature statistics": (ooc.text.ngram_fit, "stats_one_shard", 3),
    "shuffle": (ooc.preprocess, "scatter", 2),  # after the training rows were scattered
    "write": (ooc.text.jobs, "transform", 2),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_resume_after_a_crash_inside_a_pass_equals_an_uninterrupted_run(textkit, monkeypatch,
                                                                         point):
    corpus = textkit.corpus("c.csv", docs=1200, seed=43)
    options = {"top_k": 800, "chunk_rows": 100, "out": "resumed.h5"}
    module, name, at = CRASH_POINTS[point]
    original, calls = getattr(module, name), []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            raise Crash(point)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, crashing)
    with pytest.raises(Crash):
        textkit.preprocess(corpus, **options)
    monkeypatch.setattr(module, name, original)
    work = work_dir(textkit.tmp_path / "resumed.h5")
    assert work.exists()
    assert not (textkit.tmp_path / "resumed.h5").exists()
    # the spilled counts go once the vocabulary is built from them
    assert bool(list((work / "counts").glob("run-*"))) == (point == "tokenize")
    assert textkit.preprocess(corpus, resume=True, **options).resumed
    textkit.preprocess(corpus, top_k=800, chunk_rows=100, out="straight.h5")
    textkit.assert_same(textkit.load("straight.h5"), textkit.load("resumed.h5"))


def test_a_run_in_a_work_dir_of_its_own_resumes_from_there(textkit, monkeypatch):
    # --work-dir: the work directory is <work-dir>/<out's name>.ooc-work, not beside --out
    corpus = textkit.corpus("c.csv", docs=600, seed=43)
    shared = textkit.tmp_path / "shared"
    options = {"top_k": 300, "chunk_rows": 100, "out": "resumed.h5", "work_dir": str(shared)}
    original = ooc.text.jobs.transform
    monkeypatch.setattr(ooc.text.jobs, "transform", lambda *a: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        textkit.preprocess(corpus, **options)
    monkeypatch.setattr(ooc.text.jobs, "transform", original)
    assert work_dir(shared / "resumed.h5").exists()
    assert not work_dir(textkit.tmp_path / "resumed.h5").exists()
    with pytest.raises(InterruptedRunError):  # found there by the next run
        textkit.preprocess(corpus, **options)
    assert textkit.preprocess(corpus, resume=True, **options).resumed
    assert not work_dir(shared / "resumed.h5").exists()
    textkit.preprocess(corpus, top_k=300, chunk_rows=100, out="straight.h5")
    textkit.assert_same(textkit.load("straight.h5"), textkit.load("resumed.h5"))
    with pytest.raises(ValueError, match="not a URL"):
        textkit.config(corpus, work_dir="s3://bucket/work")


def test_resume_with_other_inputs_is_refused(textkit):
    corpus = textkit.corpus("c.csv", docs=300, seed=38)
    out = textkit.tmp_path / "out.h5"
    config = textkit.config(corpus, top_k=200)
    ooc.preprocess.WorkDir(out, config.fingerprint(), resume=False)  # an interrupted run
    corpus.write_text(corpus.read_text() + "class_0,one more row\n")
    with pytest.raises(ResumeError, match="other input files"):
        ooc.preprocess.preprocess(textkit.config(corpus, top_k=200, resume=True))


def test_resume_of_a_work_directory_of_another_version_is_refused(textkit):
    corpus = textkit.corpus("c.csv", docs=300, seed=38)
    out = textkit.tmp_path / "out.h5"
    config = textkit.config(corpus, top_k=200)
    work = ooc.preprocess.WorkDir(out, config.fingerprint(), resume=False)
    work.state.pop("work_format", None)  # as the versions before work formats wrote it
    work.save("tokenize_checkpoint", {"chunks": 0, "sizes": [0] * 256})
    with pytest.raises(ResumeError, match="another version of ooc.*--restart"):
        ooc.preprocess.preprocess(textkit.config(corpus, top_k=200, resume=True))
    assert textkit.preprocess(corpus, top_k=200, restart=True)


# ----------------------------------------------------------- memory budget
def test_smallest_memory_budget_equals_a_large_one(textkit, monkeypatch):
    corpus = textkit.corpus("c.csv", docs=3000, seed=39, vocab=6000, words_per_doc=40)
    textkit.preprocess(corpus, out="large.h5", top_k=2000)

    # 16 MiB is the smallest budget allowed; this corpus's counts fit in it, so the
    # budgets the reduce steps see are cut further to force sub-partitions and shards
    levels: list[int] = []
    shards: list[int] = []
    reduce_file = ooc.text.counts._reduce_file
    build_shards = ooc.preprocess.build_shards

    def spy_reduce(path, budget, min_count, level, bits, first_bits):
        levels.append(level)
        return reduce_file(path, min(budget, 16 << 10), min_count, level, bits, first_bits)

    def spy_shards(*args):
        result = build_shards(*args)
        shards.append(result.count)
        return result

    monkeypatch.setattr(ooc.text.counts, "_reduce_file", spy_reduce)
    monkeypatch.setattr(ooc.text.ngram_fit, "shard_features", lambda budget: 4000)
    monkeypatch.setattr(ooc.preprocess, "build_shards", spy_shards)
    # and every chunk of 512 rows is counted and vectorized in pieces
    monkeypatch.setattr(ooc.text.ngram_vectorizer, "COUNT_PIECE_DOCS", 100)
    monkeypatch.setattr(ooc.text.jobs, "PIECE_ROWS", 70)
    out = textkit.tmp_path / "small.h5"
    assert cli([str(corpus), "--out", str(out), "--top-k", "2000", "--memory-budget", "16M",
                 "--workers", "1", "--quiet", "--chunk-rows", "512"]) == 0
    assert max(levels) >= 2  # partitions were split again
    assert len(shards) == 1 and shards[0] >= 3  # the vocabulary was held in several shards
    textkit.assert_same(textkit.load("large.h5"), textkit.load(out), by_row_id=True)


@pytest.mark.slow
def test_f_scores_and_idf_do_not_depend_on_workers_chunks_or_shards(textkit, monkeypatch):
    # sums in one order whatever the run's shape, so near-ties pick the same features
    corpus = textkit.corpus("c.csv", docs=3000, seed=43, vocab=6000, words_per_doc=60)
    shard_scores = ooc.text.ngram_fit.shard_scores

    def spy(stats, shard):  # in the workers too: each shard's scores saved to a file
        scores, keys, idf = shard_scores(stats, shard)
        np.savez(scored / f"{os.getpid()}-{time.monotonic_ns()}.npz", keys=keys, scores=scores)
        return scores, keys, idf

    monkeypatch.setattr(ooc.text.ngram_fit, "shard_scores", spy)
    runs = {"one": {"chunk_rows": 512}, "two": {"chunk_rows": 97, "workers": 2},
            "shards": {"chunk_rows": 300, "shards": 4000},
            "shards, two": {"chunk_rows": 200, "shards": 3000, "workers": 2}}
    found, idf, n_shards = {}, {}, {}
    build_shards = ooc.preprocess.build_shards

    def count_shards(*args):
        result = build_shards(*args)
        n_shards[name] = result.count
        return result

    monkeypatch.setattr(ooc.preprocess, "build_shards", count_shards)
    for name, options in runs.items():
        scored = textkit.tmp_path / f"scores-{len(found)}"
        scored.mkdir()
        shard_size = options.pop("shards", None)
        with monkeypatch.context() as m:
            if shard_size:
                m.setattr(ooc.text.ngram_fit, "shard_features", lambda _, n=shard_size: n)
            textkit.preprocess(corpus, out=f"{name}.h5", top_k=1000, **options)
        with ooc.open(textkit.tmp_path / f"{name}.h5") as ds:
            idf[name] = ds.vectorizer.idf_.copy()
        found[name] = {}
        for path in scored.iterdir():
            with np.load(path) as saved:
                found[name].update(zip(saved["keys"].tolist(), saved["scores"].tolist(),
                                       strict=True))
    assert n_shards["one"] == n_shards["two"] == 1
    assert n_shards["shards"] > 2 and n_shards["shards, two"] > 2
    first = found["one"]
    assert len(first) > 5000
    for name in runs:  # bit for bit
        assert found[name].keys() == first.keys(), name
        assert [found[name][k] for k in first] == list(first.values()), name
        assert idf[name].tobytes() == idf["one"].tobytes(), name


def test_memory_budget_below_16_mib_is_refused(textkit, capsys):
    out = textkit.tmp_path / "out.h5"
    corpus = textkit.corpus("c.csv", docs=50, seed=40)
    assert cli([str(corpus), "--out", str(out), "--memory-budget", "15M", *QUICK]) != 0
    err = one_line(capsys.readouterr().err)  # the option the user typed, sizes readable
    assert "--memory-budget" in err and "16 MiB" in err and "15 MiB" in err


def test_ngram_vectorizer_fit_with_a_tiny_budget_equals_a_large_one(textkit):
    texts, labels = textkit.docs(1500, seed=41, vocab=5000)
    chunks = [(texts[i:i + 200], labels[i:i + 200]) for i in range(0, 1500, 200)]
    large = NgramVectorizer(top_k=1000).fit(chunks)
    tiny = NgramVectorizer(top_k=1000).fit(chunks, memory_budget=32 << 10)
    assert list(tiny.get_feature_names_out()) == list(large.get_feature_names_out())
    assert (tiny.transform(texts[:300]) != large.transform(texts[:300])).nnz == 0


def reduced(counts: SpilledCounts, budget: int, min_count: int = 1) -> dict[int, int]:
    """Every key and total that reduce yields; each key once, sorted in its partition."""
    out: dict[int, int] = {}
    for keys, totals in counts.reduce(budget, min_count):
        assert np.all(np.diff(keys.astype(np.float64)) >= 0) and len(set(keys)) == len(keys)
        for k, t in zip(keys.tolist(), totals.tolist(), strict=True):
            assert k not in out
            out[k] = t
    return out


KEYS = st.integers(0, 2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(pool=st.lists(KEYS, min_size=1, max_size=40, unique=True),
       batches=st.lists(st.lists(st.tuples(st.integers(0, 39), st.integers(1, 7)),
                                 max_size=60), min_size=1, max_size=5),
       bits=st.integers(1, 6), budget=st.sampled_from([16, 256, 4096, 1 << 30]),
       min_count=st.integers(1, 4))
def test_spilled_counts_are_exact(pool, batches, bits, budget, min_count):
    expected: Counter[int] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        counts = SpilledCounts(tmp, partition_bits=bits)
        for batch in batches:
            keys = np.array([pool[i % len(pool)] for i, _ in batch], dtype=np.uint64)
            values = np.array([c for _, c in batch], dtype=np.int64)
            counts.add(keys, values)
            for k, c in zip(keys.tolist(), values.tolist(), strict=True):
                expected[k] += c
        got = reduced(counts, budget, min_count)
        assert got == {k: c for k, c in expected.items() if c >= min_count}
        assert sorted(os.listdir(tmp)) == [f"run-{k:06d}.bin" for k in range(counts.n_runs)]


@pytest.fixture
def reduce_levels(monkeypatch) -> list[int]:
    """The split level of every ``_reduce_file`` call, in order."""
    levels: list[int] = []
    reduce_file = ooc.text.counts._reduce_file

    def spy(records, budget, min_count, level, bits, first_bits):
        levels.append(level)
        return reduce_file(records, budget, min_count, level, bits, first_bits)

    monkeypatch.setattr(ooc.text.counts, "_reduce_file", spy)
    return levels


def test_spilled_counts_split_oversized_partitions(reduce_levels, tmp_path):
    levels = reduce_levels
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 5000, size=40_000).astype(np.uint64) * np.uint64(0x1234567)
    keys[:5000] = 77  # one heavy key: splitting never shrinks its file
    values = rng.integers(1, 4, size=len(keys))
    counts = SpilledCounts(tmp_path / "c", partition_bits=2)
    for part in range(0, len(keys), 7000):
        counts.add(keys[part:part + 7000], values[part:part + 7000])
    expected: Counter[int] = Counter()
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        expected[k] += v
    assert reduced(counts, 16 << 10) == dict(expected)
    assert max(levels) >= 3
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        f"run-{k:06d}.bin" for k in range(6)]  # one run per add, no split files left


def test_spilled_counts_reduce_stays_within_its_memory_budget(tmp_path):
    rng = np.random.default_rng(1)
    counts = SpilledCounts(tmp_path, partition_bits=2)
    for _ in range(10):  # 500,000 distinct keys: 8 MB of records, 2 MB a partition
        keys = rng.integers(1, 2**63, size=50_000, dtype=np.int64).astype(np.uint64)
        counts.add(keys, np.ones(len(keys), np.int64))
    peaks = {}
    for budget in (1 << 20, 1 << 30):
        tracemalloc.start()
        try:
            n_keys = sum(len(keys) for keys, _ in counts.reduce(budget))
            peaks[budget] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert n_keys == 500_000
    assert peaks[1 << 30] > 4 * (1 << 20)  # the counts do not fit in the small budget ...
    assert peaks[1 << 20] <= 1.5 * (1 << 20)  # ... yet reducing them stays within it


def test_spilled_counts_truncate_undoes_adds(tmp_path):
    counts = SpilledCounts(tmp_path, partition_bits=3)
    for start in range(1, 200, 50):
        counts.add(np.arange(start, start + 50, dtype=np.uint64), np.ones(50, np.int64))
    checkpoint = counts.n_runs
    counts.add(np.arange(100, 400, dtype=np.uint64), np.full(300, 5, np.int64))
    counts.add(np.arange(1, 3, dtype=np.uint64), np.full(2, 5, np.int64))
    resumed = SpilledCounts(tmp_path, partition_bits=3)  # a new process after a crash
    assert resumed.n_runs == checkpoint + 2
    resumed.truncate(checkpoint)
    assert sorted(os.listdir(tmp_path)) == [f"run-{k:06d}.bin" for k in range(checkpoint)]
    resumed.add(np.array([7], np.uint64), np.array([2], np.int64))
    assert reduced(resumed, 1 << 20) == {k: 1 + 2 * (k == 7) for k in range(1, 201)}


def test_spilled_counts_ignore_an_add_stopped_while_writing(tmp_path, monkeypatch):
    counts = SpilledCounts(tmp_path, partition_bits=2)
    counts.add(np.arange(1, 100, dtype=np.uint64), np.ones(99, np.int64))

    def crash(*args):
        raise KeyboardInterrupt  # stopped after writing, before the rename

    monkeypatch.setattr(ooc.text.counts.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        counts.add(np.arange(1, 100, dtype=np.uint64), np.ones(99, np.int64))
    monkeypatch.undo()
    assert (tmp_path / "run-000001.bin.tmp").exists()
    assert reduced(counts, 1 << 20) == {k: 1 for k in range(1, 100)}
    resumed = SpilledCounts(tmp_path, partition_bits=2)
    assert resumed.n_runs == 1 and os.listdir(tmp_path) == ["run-000000.bin"]
    resumed.truncate(1)
    assert reduced(resumed, 1 << 20) == {k: 1 for k in range(1, 100)}


def test_spilled_counts_many_adds_with_a_small_budget_are_exact(tmp_path, monkeypatch,
                                                               reduce_levels):
    levels = reduce_levels
    rng = np.random.default_rng(2)
    counts = SpilledCounts(tmp_path, partition_bits=3)
    expected: Counter[int] = Counter()
    for _ in range(200):  # one file per add, whatever the number of partitions
        keys = rng.integers(1, 3000, size=rng.integers(0, 60)).astype(np.uint64)
        values = rng.integers(1, 5, size=len(keys))
        counts.add(keys, values)
        for k, v in zip(keys.tolist(), values.tolist(), strict=True):
            expected[k] += v
    assert len(os.listdir(tmp_path)) == counts.n_runs <= 200
    opened: list[object] = []
    open_file = os.open
    monkeypatch.setattr(ooc.text.counts.os, "open",
                        lambda *args: opened.append(args[0]) or open_file(*args))
    assert reduced(counts, 1 << 30) == dict(expected)
    assert len(opened) == counts.n_runs  # partitions that fit together: one open per run
    monkeypatch.setattr(ooc.text.counts.os, "open", open_file)
    assert reduced(counts, 2048) == dict(expected)
    assert max(levels) >= 3  # partitions were split again, twice
    assert reduced(counts, 2048, min_count=20) == {k: v for k, v in expected.items()
                                                    if v >= 20}
    assert len(os.listdir(tmp_path)) == counts.n_runs


def test_spilled_counts_refuse_a_damaged_run(tmp_path):
    counts = SpilledCounts(tmp_path, partition_bits=2)
    counts.add(np.arange(1, 100, dtype=np.uint64), np.ones(99, np.int64))
    counts.add(np.arange(1, 100, dtype=np.uint64), np.ones(99, np.int64))
    run = tmp_path / "run-000001.bin"
    os.truncate(run, run.stat().st_size - 16)
    with pytest.raises(ResumeError, match="run-000001.bin.*damaged"):
        reduced(counts, 1 << 20)
    run.unlink()
    with pytest.raises(ResumeError, match="run-000001.bin.*missing"):
        SpilledCounts(tmp_path, partition_bits=2).truncate(2)


@settings(max_examples=80, deadline=None)
@given(keys=st.one_of(st.sets(st.integers(1, 2**64 - 1), max_size=300),
                      st.sets(st.integers(1, 600), max_size=300)),
       absent=st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_hash_index_lookup_equals_a_dict(keys, absent):
    keys_array = np.array(sorted(keys), dtype=np.uint64)
    index = HashIndex.build(keys_array)
    position = {k: i for i, k in enumerate(keys_array.tolist())}
    queries = [*keys_array.tolist(), *absent, 0]
    got = index.lookup(np.array(queries, dtype=np.uint64))
    assert got.tolist() == [position.get(q, -1) for q in queries]
    assert 2 * len(keys) <= len(index.slots_keys)  # load factor at most 1/2


def test_hash_index_on_colliding_keys():
    bits = 12
    # keys whose Fibonacci hash lands on the same home slot collide maximally
    mix = 0x9E3779B97F4A7C15
    inverse = pow(mix, -1, 2**64)
    keys = np.array([(((7 << (64 - bits)) + j) * inverse) % 2**64 for j in range(1, 1500)],
                    dtype=np.uint64)
    keys = keys[keys != 0]
    index = HashIndex.build(keys)
    np.testing.assert_array_equal(index.lookup(keys), np.arange(len(keys)))
    others = keys + np.uint64(1)
    others = others[~np.isin(others, keys)]
    assert np.all(index.lookup(others) == -1)


# ----------------------------------------------------------------- formats
def test_npy_output_holds_the_same_data_as_hdf5(textkit):
    corpus = textkit.corpus("c.csv", docs=800, seed=42)
    for vectorizer in ("ngram", "sequence"):
        textkit.preprocess(corpus, out=f"{vectorizer}.h5", vectorizer=vectorizer, top_k=500)
        textkit.preprocess(corpus, out=f"{vectorizer}.npy.d", vectorizer=vectorizer,
                           top_k=500, format="npy")
        a, b = textkit.load(f"{vectorizer}.h5"), textkit.load(f"{vectorizer}.npy.d")
        textkit.assert_same(a, b)
        texts, _ = textkit.docs(800, seed=42)
        x = b.vectorizer.transform(texts[:20])
        y = a.vectorizer.transform(texts[:20])
        assert (x != y).sum() == 0


# glibc's counters of mapped blocks, in a fresh interpreter (mallopt lasts for the process)
MALLINFO2 = """
import ctypes, sys
import numpy as np

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
"""
# prints whether a large block allocated after a large free is mapped on its own (not so
# with glibc's defaults)
LARGE_BLOCK_MAPPED = """
a = np.ones(3 << 20, np.uint8)
del a  # glibc's default raises its mmap threshold past 3 MiB here
before = mallinfo2().hblkhd
b = np.ones(3 << 20, np.uint8)
print(mallinfo2().hblkhd - before >= 3 << 20)
"""
NEEDS_MALLOPT = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "mallinfo2") or not _platform.glibc("mallopt"),
    reason="needs glibc >= 2.33 and its mallopt")
LEAVES_ALLOCATOR = MALLINFO2 + """
import ooc
from ooc.cli import main
csv, out, how = sys.argv[1:]
if how == "api":
    ooc.preprocess_text(csv, out, top_k=50, workers=2, progress=False)
else:
    main(["preprocess", csv, "--out", out, "--top-k", "50", "--workers", "2", "--quiet"])
""" + LARGE_BLOCK_MAPPED


@NEEDS_MALLOPT
def test_the_python_api_leaves_the_callers_allocator_alone(textkit):
    # mallopt lasts for the process and glibc cannot say what it was: neither the API nor
    # the CLI calls it (glibc's own threshold makes preprocessing a sixth to a third faster)
    texts, labels = textkit.docs(300, seed=3)
    path = textkit.write_csv("corpus.csv", texts, labels)

    def large_blocks_mapped(how: str) -> str:
        return subprocess.run([sys.executable, "-c", LEAVES_ALLOCATOR, str(path),
                               str(textkit.tmp_path / f"{how}.h5"), how], check=True,
                              capture_output=True, text=True).stdout.split()[-1]

    assert large_blocks_mapped("api") == "False"
    assert large_blocks_mapped("cli") == "False"


def test_a_spawned_worker_ignores_ctrl_c_while_it_starts(tmp_path):
    # spawned workers (macOS, OOC_PORTABLE) import for a second before their
    # initializer runs; a Ctrl-C then must not kill them with a traceback
    import multiprocessing

    before = set(multiprocessing.active_children())
    with ooc.preprocess._start_pool(multiprocessing.get_context("spawn"), 1, tmp_path) as pool:
        (worker,) = set(multiprocessing.active_children()) - before
        os.kill(worker.pid, signal.SIGINT)  # still starting
        assert pool.apply_async(os.getpid, ()).get(60) == worker.pid
        pool.close()


# a process pool stopped while its workers send back large results (fork: the test's
# own function runs in them)
STOPPED_WHILE_SENDING = """
import multiprocessing, sys, tempfile, time
from pathlib import Path
from ooc.text.jobs import WorkerPool

def big(i):
    return b"x" * (16 << 20)

if __name__ == "__main__":
    for trial in range(int(sys.argv[1])):
        with WorkerPool(multiprocessing.get_context("fork").Pool(2),
                        Path(tempfile.gettempdir())) as pool:
            for i in range(4):
                pool.apply_async(big, (i,))
            time.sleep(0.05 * (trial % 5))
    print("stopped")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks its workers")
def test_a_pool_stopped_while_workers_send_large_results_does_not_hang(tmp_path):
    # Pool.terminate() alone hung within 40 such stops in two runs of three (python/cpython#73945)
    script = tmp_path / "stop.py"
    script.write_text(STOPPED_WHILE_SENDING)
    res = subprocess.run([sys.executable, str(script), "40"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "stopped", res.stderr


def spooled_result(i: int) -> dict:
    """A job's result with arrays over and under ``SPOOL_BYTES``, and non-array parts."""
    rng = np.random.default_rng(i)
    return {"i": i, "big": rng.integers(0, 2**63, 300_000, dtype=np.uint64),
            "small": rng.random(10), "ragged": [np.arange(i, dtype=np.int32)] * 3}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_large_results_come_back_through_the_spool_whole_and_leave_no_file(tmp_path, method,
                                                                           monkeypatch):
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    spooled = []
    unspool = ooc.text.jobs._unspool
    monkeypatch.setattr(ooc.text.jobs, "_unspool",
                        lambda r: spooled.append(type(r).__name__) or unspool(r))
    with WorkerPool(multiprocessing.get_context(method).Pool(2), tmp_path) as pool:
        got = list(ooc.text.jobs.ordered_map(pool, spooled_result, [(i,) for i in range(6)], 3))
        pool.close()
    for i, result in enumerate(got):
        expected = spooled_result(i)
        assert result["i"] == i
        for name in ("big", "small"):
            np.testing.assert_array_equal(result[name], expected[name])
        assert all(np.array_equal(a, b) for a, b in zip(result["ragged"], expected["ragged"],
                                                        strict=True))
    assert spooled == ["_Spooled"] * 6  # the 2.4 MB arrays did not go through the pipe
    assert not list(tmp_path.iterdir())


def test_a_selection_stopped_after_removing_hits_resumes_to_the_same_dataset(textkit,
                                                                            monkeypatch):
    # each shard's hits are removed once it is scored; a resume makes them again
    corpus = textkit.corpus("c.csv", docs=1200, seed=44)
    monkeypatch.setattr(ooc.text.ngram_fit, "shard_features", lambda budget: 1000)
    options = {"top_k": 800, "chunk_rows": 100, "workers": 1}
    select_in_shard, calls = ooc.text.ngram_fit.select_in_shard, []

    def crashing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise Crash("selection")
        return select_in_shard(*args)

    monkeypatch.setattr(ooc.text.ngram_fit, "select_in_shard", crashing)
    with pytest.raises(Crash):
        textkit.preprocess(corpus, out="resumed.h5", **options)
    hits = work_dir(textkit.tmp_path / "resumed.h5") / "hits"
    shards_left = {p.name.split("-")[1] for p in hits.iterdir()}
    assert shards_left == {"0001.npy", "0002.npy", "0003.npy"}  # the first shard's are gone
    monkeypatch.setattr(ooc.text.ngram_fit, "select_in_shard", select_in_shard)
    assert textkit.preprocess(corpus, out="resumed.h5", resume=True, **options).resumed
    textkit.preprocess(corpus, out="straight.h5", **options)
    textkit.assert_same(textkit.load("straight.h5"), textkit.load("resumed.h5"))
