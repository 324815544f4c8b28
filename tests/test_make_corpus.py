"""Tests for tools/make_corpus.py, the seeded synthetic corpus generator."""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import load_tool

TOOL = Path(__file__).resolve().parents[1] / "tools" / "make_corpus.py"
SMALL = {"vocab": 2000, "words_per_doc": 20}
OPENERS = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}


mc = load_tool(TOOL, "make_corpus")


def _read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    """Every row of a (possibly compressed) CSV file, header included."""
    opener = OPENERS.get(path.suffix.lstrip("."), open)
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter=delimiter))


def test_same_seed_same_documents_other_seed_different() -> None:
    a = mc.generate_docs(300, seed=7, **SMALL)
    assert a == mc.generate_docs(300, seed=7, **SMALL)
    assert a[0] != mc.generate_docs(300, seed=8, **SMALL)[0]


def test_prefix_is_stable_across_sizes() -> None:
    texts, labels = mc.generate_docs(500, seed=1, **SMALL)
    assert mc.generate_docs(200, seed=1, **SMALL) == (texts[:200], labels[:200])


def test_documents_look_like_text() -> None:
    texts, labels = mc.generate_docs(3000, seed=2, vocab=5000)
    joined = " ".join(texts)
    assert all(t and t[-1] in ".!?" and "\n" not in t for t in texts)
    assert all(t[0].isupper() or not t[0].isascii() or not t[0].isalpha() for t in texts)
    for needle in (", ", "! ", "? ", "'", "-", '"'):
        assert needle in joined
    assert any(ch.isdigit() for ch in joined)
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= 1 and 60 < sum(lengths) / len(lengths) < 100
    assert len(set(lengths)) > 50
    non_ascii = sum(not t.isascii() for t in texts)
    assert 0.01 * len(texts) < non_ascii < 0.04 * len(texts)
    assert set(labels) == {f"class_{k}" for k in range(5)}


def test_classes_balanced_and_int_labels() -> None:
    _, labels = mc.generate_docs(5000, classes=4, int_labels=True, seed=3, **SMALL)
    counts = Counter(labels)
    assert set(counts) == {0, 1, 2, 3}
    assert all(1000 < c < 1500 for c in counts.values())


def test_signal_words_are_class_dependent() -> None:
    config = mc.CorpusConfig(docs=1, classes=3, seed=4, **SMALL)
    vocab = mc.build_vocabulary(config)
    texts, labels = mc.generate_docs(1500, classes=3, seed=4, **SMALL)
    own = {vocab.piece(i) for i in vocab.signal[0]}
    hits = Counter()
    for text, label in zip(texts, labels, strict=True):
        hits[label] += len(own.intersection(re.findall(r"\w+", text.lower())))
    assert hits["class_0"] > 2 * max(hits["class_1"], hits["class_2"], 1)


def test_sorted_by_class_is_a_permutation_in_class_order(tmp_path: Path) -> None:
    plain = mc.make_corpus(tmp_path / "a.csv", 2000, seed=5, **SMALL)
    ordered = mc.make_corpus(tmp_path / "b.csv", 2000, seed=5, sorted_by_class=True, **SMALL)
    a, b = _read_csv(plain.path)[1:], _read_csv(ordered.path)[1:]
    assert len(a) == len(b) == 2000
    assert [r[0] for r in b] == sorted(r[0] for r in b)
    assert sorted(map(tuple, a)) == sorted(map(tuple, b))
    assert plain.class_counts == ordered.class_counts
    assert [r[0] for r in a] != [r[0] for r in b]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_delimited_round_trip(tmp_path: Path, fmt: str) -> None:
    summary = mc.make_corpus(tmp_path / f"c.{fmt}", 700, format=fmt, seed=6, **SMALL)
    rows = _read_csv(summary.path, "\t" if fmt == "tsv" else ",")
    assert rows[0] == ["label", "text"]
    texts, labels = mc.generate_docs(700, seed=6, **SMALL)
    assert rows[1:] == [[lab, t] for lab, t in zip(labels, texts, strict=True)]
    assert summary.docs == 700 and summary.bytes == summary.path.stat().st_size


def test_title_column(tmp_path: Path) -> None:
    summary = mc.make_corpus(tmp_path / "t.csv", 300, title=True, seed=6, **SMALL)
    rows = _read_csv(summary.path)
    assert rows[0] == ["label", "title", "text"]
    assert all(len(r) == 3 and 2 <= len(r[1].split()) <= 6 for r in rows[1:])
    assert [r[2] for r in rows[1:]] == mc.generate_docs(300, seed=6, **SMALL)[0]


def test_jsonl(tmp_path: Path) -> None:
    summary = mc.make_corpus(tmp_path / "c.jsonl", 400, format="jsonl", int_labels=True, **SMALL)
    lines = summary.path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 400 and set(rows[0]) == {"label", "text"}
    assert {r["label"] for r in rows} <= set(range(5))


def test_folder(tmp_path: Path) -> None:
    summary = mc.make_corpus(tmp_path / "tree", 250, format="folder", seed=9, **SMALL)
    files = sorted(summary.path.rglob("*.txt"))
    assert len(files) == 250
    assert {f.parent.name for f in files} == {f"class_{k}" for k in range(5)}
    texts, labels = mc.generate_docs(250, seed=9, **SMALL)
    first = summary.path / labels[0] / "000.txt"
    assert first.read_text(encoding="utf-8") == texts[0] + "\n"


@pytest.mark.parametrize("compress", ["gz", "bz2", "xz"])
def test_compression(tmp_path: Path, compress: str) -> None:
    summary = mc.make_corpus(tmp_path / "c.csv", 500, compress=compress, seed=1, **SMALL)
    assert summary.path.name == f"c.csv.{compress}"
    plain = mc.make_corpus(tmp_path / "p.csv", 500, seed=1, **SMALL)
    assert _read_csv(summary.path) == _read_csv(plain.path)
    assert summary.bytes < plain.bytes


def test_compression_from_suffix_and_identical_bytes(tmp_path: Path) -> None:
    a = mc.make_corpus(tmp_path / "a.jsonl.gz", 300, format="jsonl", **SMALL)
    b = mc.make_corpus(tmp_path / "b.jsonl.gz", 300, format="jsonl", **SMALL)
    assert a.path.read_bytes() == b.path.read_bytes()
    with gzip.open(a.path, "rt", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 300


def test_no_partial_file_left(tmp_path: Path) -> None:
    mc.make_corpus(tmp_path / "c.csv", 10, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]


@pytest.mark.parametrize(
    "kwargs",
    [{"docs": -1}, {"classes": 0}, {"words_per_doc": 0}, {"vocab": 10}, {"format": "xml"},
     {"format": "folder", "compress": "gz"}, {"classes": 200, "vocab": 1000}],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"docs": 10, **kwargs}
    with pytest.raises(ValueError, match="Expected"):
        mc.make_corpus(tmp_path / "x", **args)


def test_zero_docs_writes_header_only(tmp_path: Path) -> None:
    summary = mc.make_corpus(tmp_path / "e.csv", 0, **SMALL)
    assert _read_csv(summary.path) == [["label", "text"]]


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    args = [sys.executable, str(TOOL), str(out), "--docs", "200", "--vocab", "2000"]
    done = subprocess.run([*args, "--classes", "3", "--compress", "gz"],
                          capture_output=True, text=True, check=True)
    assert "200 docs, 3 classes" in done.stdout and len(done.stdout.splitlines()) == 1
    assert len(_read_csv(tmp_path / "cli.csv.gz")) == 201
    bad = subprocess.run([*args, "--classes", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Expected classes" in bad.stderr
