"""``ooc explore``: corpus statistics against direct in-memory computations."""

from __future__ import annotations

import csv
import json
import random
import statistics
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from ooc.cli import main
from ooc.errors import CorpusError
from ooc.explore import (
    NGRAM_MODEL,
    PLOT_FILES,
    RATIO_THRESHOLD,
    SEQUENCE_MODEL,
    LengthHistogram,
    explore,
    recommend,
)
from ooc.text.sources import SourceSpec

WORDS = ["the", "a", "and", "film", "Great", "bad", "café", "naïve", "x", "I", "don't",
         "well-made", "2024", "snake_case", "Ünïcödé", "ok!", "really...", "--", "movie,"]


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` documents of Zipf-ish words and odd spacing, with 4 unbalanced classes."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    texts, labels = [], []
    for _ in range(n):
        words = rng.choices(WORDS, weights, k=rng.randint(1, 40))
        texts.append("".join(w + rng.choice([" ", "  ", "\t", "\n "]) for w in words).strip())
        labels.append(rng.choice(["pos", "neg", "neg", "mixed", "other"]))
    return texts, labels


def write_csv(path, texts, labels, extra_rows=()):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(zip(labels, texts, strict=True))
        writer.writerows(extra_rows)
    return path


@pytest.fixture
def small(tmp_path):
    texts, labels = corpus(700)
    return write_csv(tmp_path / "c.csv", texts, labels), texts, labels


def test_counts_classes_and_lengths_match_in_memory(small):
    path, texts, labels = small
    report = explore(SourceSpec([path]), progress=False, chunk_rows=64)
    lengths = [len(t.split()) for t in texts]
    assert report.n_samples == len(texts)
    assert report.class_counts == dict(sorted(Counter(labels).items()))
    assert report.n_classes == 4
    assert report.median_words == statistics.median(lengths)
    assert report.ratio == pytest.approx(len(texts) / statistics.median(lengths))
    for unit, values in (("words", lengths), ("characters", [len(t) for t in texts])):
        stats = getattr(report, unit)
        assert (stats.min, stats.max) == (min(values), max(values))
        assert stats.mean == pytest.approx(np.mean(values))
        for q in (5, 25, 50, 75, 95):
            assert stats.percentiles[str(q)] == pytest.approx(np.percentile(values, q))
        counts, edges = np.histogram(values, 50)
        assert stats.bin_counts == counts.tolist()
        np.testing.assert_allclose(stats.bin_edges, edges)


def sklearn_top(texts, ngram_range, n):
    vec = CountVectorizer(ngram_range=ngram_range, strip_accents="unicode")
    totals = np.asarray(vec.fit_transform(texts).sum(axis=0)).ravel()
    pairs = sorted(zip(vec.get_feature_names_out(), totals.tolist(), strict=True),
                   key=lambda p: (-p[1], p[0]))
    return pairs[:n], len(pairs)


@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 1), (2, 3)])
def test_top_ngrams_match_count_vectorizer(small, ngram_range):
    path, texts, _ = small
    report = explore(SourceSpec([path]), top=40, ngram_range=ngram_range, progress=False,
                     chunk_rows=100)
    expected, distinct = sklearn_top(texts, ngram_range, 40)
    assert report.top_ngrams == [(g, int(c)) for g, c in expected]
    assert report.distinct_ngrams == distinct


def test_top_larger_than_vocabulary_lists_every_ngram_with_ties_by_string(tmp_path):
    texts = ["ab cd", "abc", "zz yy", "yy zz"]
    path = write_csv(tmp_path / "t.csv", texts, ["a", "b", "a", "b"])
    report = explore(SourceSpec([path]), top=100, progress=False)
    assert report.top_ngrams == [("yy", 2), ("zz", 2), ("ab", 1), ("ab cd", 1), ("abc", 1),
                                 ("cd", 1), ("yy zz", 1), ("zz yy", 1)]


def test_recommendation_flips_at_the_threshold(tmp_path):
    assert recommend(RATIO_THRESHOLD - 0.01) == NGRAM_MODEL
    assert recommend(RATIO_THRESHOLD) == SEQUENCE_MODEL
    for n_docs, model in ((2998, NGRAM_MODEL), (3000, SEQUENCE_MODEL)):
        path = write_csv(tmp_path / f"{n_docs}.csv", ["two words"] * n_docs, ["a", "b"] *
                         (n_docs // 2))
        report = explore(SourceSpec([path]), top=0, progress=False)
        assert (report.median_words, report.recommendation) == (2, model)
        assert report.top_ngrams == [] and report.ratio == n_docs / 2


def test_length_histogram_is_exact_beyond_the_dense_part():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.integers(0, 30, 501), [10**9, 7 * 10**6, 44]])
    hist = LengthHistogram(dense_limit=16)
    for piece in np.array_split(values, 7):
        hist.add(piece)
    assert hist.count == len(values)
    assert hist.median() == np.median(values)
    for q in (0, 1, 5, 33.3, 50, 95, 99.9, 100):
        assert hist.percentile(q) == pytest.approx(np.percentile(values, q))
    stats = hist.stats("words")
    assert stats.bin_counts == np.histogram(values, 50)[0].tolist()


def test_cli_prints_report_and_writes_json(small, tmp_path, capsys):
    path, texts, _ = small
    out = tmp_path / "report.json"
    assert main(["explore", str(path), "--json", str(out), "--top", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["n_samples"] == len(texts) and data["n_classes"] == 4
    assert data["median_words"] == statistics.median(len(t.split()) for t in texts)
    assert [d["ngram"] for d in data["top_ngrams"]] == [g for g, _ in
                                                        sklearn_top(texts, (1, 2), 5)[0]]
    assert data["recommendation"] in printed and "median words" in printed
    assert len(printed.splitlines()) < 40


def test_cli_plots_three_png_files(small, tmp_path, capsys):
    path, _, _ = small
    assert main(["explore", str(path), "--plots", str(tmp_path / "plots"), "--quiet"]) == 0
    for name in PLOT_FILES:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_cli_column_flags_and_jsonl_integer_labels(tmp_path, capsys):
    tsv = tmp_path / "c.tsv"
    tsv.write_text("a b c;10\nd e;9\nf;10\n", encoding="utf-8")
    args = ["explore", str(tsv), "--no-header", "--delimiter", ";", "--text-column", "0",
            "--label-column", "1", "--json", str(tmp_path / "r.json"), "--quiet"]
    assert main(args) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["class_counts"] == {"9": 1, "10": 2} and data["median_words"] == 2
    assert list(data["class_counts"]) == ["9", "10"]


def test_bad_rows_skipped_and_counted(small, tmp_path, capsys):
    _, texts, labels = small
    path = write_csv(tmp_path / "bad.csv", texts[:50], labels[:50],
                     extra_rows=[["pos"], ["", "no label"], ["neg", "   "], ["neg", "fine"]])
    assert main(["explore", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err
    assert main(["explore", str(path), "--on-bad-row", "skip", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "51 samples" in out and "skipped          3 bad rows" in out
    report = explore(SourceSpec([path], on_bad_row="skip"), progress=False)
    assert report.n_samples == 51 and sum(report.skipped.values()) == 3


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "missing.csv"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.csv" in err and err.startswith("ooc explore:")
    empty = write_csv(tmp_path / "empty.csv", [], [])
    assert main(["explore", str(empty), "--quiet"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(CorpusError):
        explore(SourceSpec([empty]), progress=False)
    with pytest.raises(ValueError, match="ngram_range"):
        explore(SourceSpec([empty]), ngram_range=(2, 1), progress=False)


def test_import_and_help_stay_light():
    code = ("import sys, ooc.explore, ooc.cli; ooc.cli.build_parser(); "
            "assert 'tensorflow' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
