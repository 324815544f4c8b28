"""Feature selection as scikit-learn's ``SelectKBest(f_classif, k)`` makes it, ties included.

At a tie at the k-th score scikit-learn keeps the features whose names sort
last (a stable sort of the scores over the features in name order); ties
are common, as n-grams that occur in exactly the same rows have equal
columns.  Both fits (:meth:`NgramVectorizer.fit` and ``ooc preprocess``,
with one vocabulary shard or several) must keep exactly scikit-learn's
features, in its order.  The class statistics behind the F scores are held
per (n-gram, class) pair that occurs, so many classes stay within the
memory budget (checked under ``tools/run_capped.py``).
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from conftest import load_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif

import ooc.preprocess
import ooc.text.ngram_fit
from ooc.sample_corpus import generate_docs
from ooc.text.ngram_vectorizer import ClassStats, NgramVectorizer, top_k

RUN_CAPPED = Path(__file__).resolve().parents[1] / "tools" / "run_capped.py"


# ------------------------------------------------------------------ corpora
def tied_words() -> tuple[list[str], list[str], int]:
    """400 rows, 2 classes; ``alpha .. echo`` in every 4th row tie at the 3rd score."""
    texts, _ = generate_docs(400, seed=7, vocab=2000, words_per_doc=30, classes=2)
    labels = ["pos" if i % 4 < 2 else "neg" for i in range(400)]
    extra = {0: " alpha bravo charlie delta echo great", 1: " great", 2: " awful", 3: " awful"}
    return [t + extra[i % 4] for i, t in enumerate(texts)], labels, 3


def cjk_words() -> tuple[list[str], list[str], int]:
    """CJK words, 3 classes; 11 equal n-gram columns straddle the 51st score."""
    rng = random.Random(6)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 60)]
    words = ["".join(rng.choice(chars) for _ in range(2)) for _ in range(90)]
    tied = [chr(0x6C34 + i) + chr(0x5C71 + i) for i in range(6)]
    texts, labels = [], []
    for i in range(300):
        c = i % 3
        pick = [rng.choice(words[30 * c:30 * c + 30]) if rng.random() < 0.5 else rng.choice(words)
                for _ in range(rng.randint(3, 12))]
        if rng.random() < (0.3 if c == 0 else 0.1):
            pick += tied
        texts.append(" ".join(pick))
        labels.append(f"c{c}")
    return texts, labels, 51


def identical_texts() -> tuple[list[str], list[str], int]:
    """The same text in every row: every F score is 0."""
    return ["the same review, word for word, every single time"] * 60, \
        [f"l{i % 3}" for i in range(60)], 5


CORPORA = {"tied_words": tied_words, "cjk": cjk_words, "identical": identical_texts}


def sklearn_selection(texts: list[str], labels: list[str], k: int) -> list[str]:
    """The n-grams ``TfidfVectorizer`` + ``SelectKBest(f_classif, k)`` keep, in its order;
    checks that ``k`` cuts through features of equal score (the case under test)."""
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode")
    x = tfidf.fit_transform(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant features
        select = SelectKBest(f_classif, k=k).fit(x, labels)
    scores = np.nan_to_num(select.scores_, nan=np.finfo(np.float64).min)
    cut = np.sort(scores)[::-1][k - 1]
    assert (scores == cut).sum() > 1 and (scores >= cut).sum() > k  # a tie straddles the cut
    return list(select.get_feature_names_out(tfidf.get_feature_names_out()))


# --------------------------------------------------------------- the repros
@pytest.mark.parametrize("name", CORPORA)
def test_ngram_vectorizer_fit_keeps_sklearns_features_at_ties(name):
    texts, labels, k = CORPORA[name]()
    chunks = [(texts[i:i + 64], labels[i:i + 64]) for i in range(0, len(texts), 64)]
    vec = NgramVectorizer(top_k=k).fit(chunks)
    assert list(vec.get_feature_names_out()) == sklearn_selection(texts, labels, k)


@pytest.mark.parametrize("name", CORPORA)
@pytest.mark.parametrize("shards", [1, 4])
def test_preprocess_keeps_sklearns_features_at_ties(textkit, monkeypatch, name, shards):
    texts, labels, k = CORPORA[name]()
    counts: list[int] = []
    build_shards = ooc.preprocess.build_shards

    def spy(*args: object) -> ooc.text.ngram_fit.Shards:
        result = build_shards(*args)
        counts.append(result.count)
        return result

    monkeypatch.setattr(ooc.preprocess, "build_shards", spy)
    if shards > 1:  # several vocabulary shards: the running top k is merged shard by shard
        n_vocab = len(TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit(texts).vocabulary_)
        monkeypatch.setattr(ooc.text.ngram_fit, "shard_features",
                            lambda budget: n_vocab // shards)
    path = textkit.write_csv("corpus.csv", texts, labels)
    textkit.preprocess(path, top_k=k, val_split=0, chunk_rows=50, workers=2,
                       memory_budget=16 << 20)
    assert (counts[0] >= shards) and (counts[0] == 1) == (shards == 1)
    expected = sklearn_selection(texts, labels, k)
    assert textkit.load("out.h5").feature_names == expected


# ------------------------------------------------------------ the pieces
def equal_columns_matrix(rng: np.random.Generator, n_rows: int, n_classes: int) -> tuple[
        scipy.sparse.csr_matrix, np.ndarray]:
    """Sparse rows with many equal columns (each base column three times) and labels."""
    base = scipy.sparse.random(n_rows, 30, density=0.2, random_state=rng, format="csc")
    base.data = np.round(base.data * 4) / 7 + 0.1  # few distinct values: more equal sums
    x = scipy.sparse.hstack([base, base, base[:, ::-1]], format="csr")
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n_rows - n_classes)])
    return x, rng.permutation(y)  # every class has rows, as in a fit


@pytest.mark.parametrize(("n_classes", "buffer_bytes"), [(2, 1 << 20), (3, 2000), (150, 5000)])
def test_class_stats_scores_are_f_classifs_bit_for_bit(n_classes, buffer_bytes):
    rng = np.random.default_rng(n_classes)
    x, y = equal_columns_matrix(rng, 600, n_classes)
    stats = ClassStats(np.bincount(y, minlength=n_classes), x.shape[1], buffer_bytes)
    for lo in range(0, x.shape[0], 70):  # chunks of rows, in order
        piece = x[lo:lo + 70].tocoo()
        stats.add(piece.col.astype(np.int32), y[lo:lo + 70][piece.row], piece.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = f_classif(x, y)[0]
    np.testing.assert_array_equal(stats.scores(), expected)  # equal, not close


def test_class_stats_held_densely_or_by_pair_score_alike():
    # dense when features x classes fit the buffer, else pairs; a class
    # without training rows (it has rows in another split) adds nothing to either
    rng = np.random.default_rng(5)
    x, y = equal_columns_matrix(rng, 500, 3)
    counts = np.append(np.bincount(y, minlength=3), 0)
    scores = []
    for buffer_bytes in (1 << 20, 4000):
        stats = ClassStats(counts, x.shape[1], buffer_bytes)
        for lo in range(0, x.shape[0], 64):
            piece = x[lo:lo + 64].tocoo()
            stats.add(piece.col.astype(np.int32), y[lo:lo + 64][piece.row], piece.data)
        scores.append(stats.scores())
    assert [ClassStats(counts, x.shape[1], b).dense for b in (1 << 20, 4000)] == [True, False]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert np.isfinite(scores[0]).any()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scores=st.lists(st.sampled_from([0.0, -0.0, 1.5, 2.0, np.inf, -np.inf, np.nan]),
                       min_size=1, max_size=40),
       k=st.integers(1, 45), seed=st.integers(0, 1000))
def test_top_k_keeps_what_select_k_best_keeps(scores, k, seed):
    names = sorted({f"w{i:03d}" for i in range(len(scores))})
    order = np.random.default_rng(seed).permutation(len(scores))  # features in any order
    shuffled = np.array(scores)[order]
    kept = top_k(shuffled, k, lambda idx: [names[i] for i in order[idx]])
    x = np.zeros((4, len(scores)))
    select = SelectKBest(lambda *_: np.array(scores), k=min(k, len(scores)))
    expected = list(select.fit(x, [0, 1, 0, 1]).get_feature_names_out(names))
    assert [names[i] for i in order[kept]] == expected


# -------------------------------------------------------------- many classes
def many_class_corpus(path: Path, rows: int, classes: int) -> None:
    """``rows`` rows of 20 Zipf-distributed words, labels drawn from ``classes`` classes."""
    rng = np.random.default_rng(3)
    words = np.minimum(rng.zipf(1.3, size=(rows, 20)), 30_000)
    labels = rng.integers(0, classes, rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["label", "text"])
        out.writerows((f"k{c}", " ".join(f"w{w}" for w in row))
                      for c, row in zip(labels.tolist(), words.tolist(), strict=True))


run_capped = load_tool(RUN_CAPPED, "run_capped")
needs_cap = pytest.mark.skipif(run_capped.capping_method() is None, reason="no memory cap here")


@needs_cap
def test_many_classes_stay_within_the_memory_budget(tmp_path):
    """3,000 classes: the class statistics once took classes x features x 8 bytes."""
    corpus = tmp_path / "many.csv"
    many_class_corpus(corpus, 6000, 3000)
    # about 90 MiB now; 600 MiB when the statistics were dense (classes x n-grams)
    command = [sys.executable, str(RUN_CAPPED), "--memory", "300M", "--",
               sys.executable, "-m", "ooc", "preprocess", str(corpus), "--out",
               str(tmp_path / "out.h5"), "--val-split", "0", "--memory-budget", "64M",
               "--workers", "1", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
