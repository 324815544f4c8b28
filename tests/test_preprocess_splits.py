"""The splits of ``ooc preprocess``: ``train``, ``val`` and ``test``, by a seeded fraction of
the row ids (``--val-split``, ``--test-split``) or from separate inputs (``--val``,
``--test``); the vectorizer never sees a held-out row.

Parity of a test split with scikit-learn and Keras is in ``tests/test_vectorizers.py``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

import ooc
import ooc.preprocess
import ooc.text.jobs
import ooc.text.ngram_fit
from ooc._hash import uniform
from ooc.cli import main
from ooc.errors import CorpusError, ResumeError

QUICK = ["--workers", "1", "--quiet", "--chunk-rows", "256"]
TEST_ONLY = "testonlyword"


def ids_of(ds, name: str) -> np.ndarray:
    return np.sort(ds.splits[name].row_ids)


def within_binomial(count: int, n: int, p: float) -> bool:
    """``count`` is within 4 standard deviations of Binomial(n, p)'s mean."""
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


# ------------------------------------------------------------- --test-split
def test_test_split_follows_its_fraction_and_holds_every_row_once(textkit):
    n, seed = 3000, 9
    corpus = textkit.corpus("c.csv", docs=n, seed=51)
    summary = textkit.preprocess(corpus, out="three.h5", top_k=300, val_split=0.2,
                                 test_split=0.25, seed=seed)
    ds = textkit.load("three.h5")
    assert list(ds.splits) == ["train", "val", "test"]
    train, val, test = (ids_of(ds, s) for s in ("train", "val", "test"))
    assert summary.rows == {"train": len(train), "val": len(val), "test": len(test)}
    for ids, p in ((train, 0.55), (val, 0.2), (test, 0.25)):
        assert within_binomial(len(ids), n, p), (len(ids), p)
    every = np.concatenate([train, val, test])
    np.testing.assert_array_equal(np.sort(every), np.arange(n))  # disjoint, none missing
    # the documented rule: u >= 1 - test_split is test, u < val_split is validation
    u = uniform(np.arange(n), seed)
    np.testing.assert_array_equal(test, np.flatnonzero(u >= 0.75))
    np.testing.assert_array_equal(val, np.flatnonzero(u < 0.2))
    # so adding a test split leaves the validation rows of the same seed as they were
    textkit.preprocess(corpus, out="two.h5", top_k=300, val_split=0.2, seed=seed)
    np.testing.assert_array_equal(ids_of(textkit.load("two.h5"), "val"), val)


def test_test_split_does_not_depend_on_workers_or_chunk_rows(textkit):
    corpus = textkit.corpus("c.csv", docs=1500, seed=52)
    options = {"top_k": 400, "val_split": 0.15, "test_split": 0.2}
    textkit.preprocess(corpus, out="one.h5", chunk_rows=200, **options)
    textkit.preprocess(corpus, out="two.h5", chunk_rows=333, workers=2, **options)
    textkit.preprocess(corpus, out="plain.h5", chunk_rows=97, shuffle=False, **options)
    one = textkit.load("one.h5")
    assert len(one.splits["test"].row_ids) > 200
    textkit.assert_same(one, textkit.load("two.h5"))
    textkit.assert_same(one, textkit.load("plain.h5"), by_row_id=True)


def test_test_rows_stay_out_of_a_vocabulary_held_in_several_shards(textkit, monkeypatch):
    corpus = textkit.corpus("c.csv", docs=1500, seed=60, vocab=4000, words_per_doc=40)
    options = {"top_k": 1500, "test_split": 0.3}
    textkit.preprocess(corpus, out="one.h5", **options)
    shards: list[int] = []
    build_shards = ooc.preprocess.build_shards

    def spy(*args):
        result = build_shards(*args)
        shards.append(result.count)
        return result

    monkeypatch.setattr(ooc.text.ngram_fit, "shard_features", lambda budget: 3000)
    monkeypatch.setattr(ooc.preprocess, "build_shards", spy)
    textkit.preprocess(corpus, out="sharded.h5", **options)
    assert shards[0] >= 2  # statistics by shard, from the triples files
    textkit.assert_same(textkit.load("one.h5"), textkit.load("sharded.h5"))


def test_no_validation_rows_with_a_test_split(textkit):
    corpus = textkit.corpus("c.csv", docs=400, seed=53)
    summary = textkit.preprocess(corpus, top_k=200, val_split=0.0, test_split=0.3)
    assert list(textkit.load("out.h5").splits) == ["train", "test"]
    assert set(summary.rows) == {"train", "test"}


def test_info_lists_the_test_split(textkit, capsys):
    corpus = textkit.corpus("c.csv", docs=400, seed=54)
    out = textkit.tmp_path / "out.h5"
    assert main(["preprocess", str(corpus), "--out", str(out), "--top-k", "200",
                 "--test-split", "0.2", *QUICK]) == 0
    assert "test " in capsys.readouterr().out  # the summary's rows
    assert main(["info", str(out)]) == 0
    assert "\nsplit     test: " in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info["splits"]) == ["train", "val", "test"]
    assert info["metadata"]["preprocess"]["test_split"] == 0.2


# ------------------------------------------------------------------ --test
def held_out_inputs(textkit, n_train: int = 400, n_test: int = 120):
    """A training CSV and a test CSV whose texts carry a word no training row has."""
    texts, labels = textkit.docs(n_train + n_test, seed=55)
    test_texts = [f"{TEST_ONLY} {TEST_ONLY} {t}" if labels[n_train + i] == "class_0" else t
                  for i, t in enumerate(texts[n_train:])]
    train = textkit.write_csv("train.csv", texts[:n_train], labels[:n_train])
    test = textkit.write_csv("test.csv", test_texts, labels[n_train:])
    return train, test, test_texts, labels[n_train:]


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
@pytest.mark.parametrize("vectorizer", ["ngram", "sequence"])
def test_test_inputs_are_held_out_and_vectorized(textkit, vectorizer, fmt):
    train, test, test_texts, test_labels = held_out_inputs(textkit)
    out = f"out-{vectorizer}" + (".h5" if fmt == "hdf5" else "")
    summary = ooc.preprocess_text(train, textkit.tmp_path / out, test_inputs=[test],
                                  vectorizer=vectorizer, format=fmt, top_k=100_000,
                                  workers=1, progress=False)
    assert summary.rows["test"] == 120
    ds = textkit.load(out)
    assert list(ds.splits) == ["train", "val", "test"]
    main_ids = np.concatenate([ds.splits["train"].row_ids, ds.splits["val"].row_ids])
    np.testing.assert_array_equal(np.sort(main_ids), np.arange(400))
    split = ds.splits["test"]
    np.testing.assert_array_equal(np.sort(split.row_ids), np.arange(120))  # the test file's rows
    assert [ds.classes[k] for k in split.y] == [test_labels[i] for i in split.row_ids]
    x = ds.vectorizer.transform([test_texts[i] for i in split.row_ids])
    if vectorizer == "ngram":
        assert abs(x - split.x).max() <= 1e-6
        assert not any(TEST_ONLY in name for name in ds.feature_names)
        assert TEST_ONLY not in ds.vectorizer.tokens
    else:
        np.testing.assert_array_equal(x, split.x)
        assert TEST_ONLY not in ds.vectorizer.words


def test_validation_and_test_inputs_together(textkit):
    texts, labels = textkit.docs(500, seed=56)
    paths = [textkit.write_csv(f"{name}.csv", texts[a:b], labels[a:b])
             for name, a, b in (("train", 0, 300), ("val", 300, 400), ("test", 400, 500))]
    # the validation inputs take the place of --val-split: 0.5 + 0.6 is no error
    summary = textkit.preprocess(paths[0], val_inputs=(str(paths[1]),), val_split=0.5,
                                 test_inputs=(str(paths[2]),), top_k=300)
    assert summary.rows == {"train": 300, "val": 100, "test": 100}
    with pytest.raises(ValueError, match="val_split \\+ test_split must be below 1"):
        textkit.config(paths[0], val_split=0.5, test_split=0.6)
    summary = textkit.preprocess(paths[0], out="frac.h5", val_inputs=(str(paths[1]),),
                                 test_split=0.6, top_k=300)
    assert within_binomial(summary.rows["test"], 300, 0.6) and summary.rows["val"] == 100


def test_unseen_test_label_is_an_error(textkit):
    texts, labels = textkit.docs(240, seed=57, classes=3)
    train = textkit.write_csv("train.csv", texts[:200], labels[:200])
    test = textkit.write_csv("test.csv", texts[200:], ["class_9"] * 40)
    with pytest.raises(CorpusError, match="test rows have labels never seen in training"):
        textkit.preprocess(train, test_inputs=(str(test),), top_k=100)
    assert not (textkit.tmp_path / "out.h5").exists()


# ------------------------------------------------------------ bad settings
@pytest.mark.parametrize(("args", "expected"), [
    (["--test-split", "1"], "argument --test-split: expected a fraction in [0, 1); got 1.0"),
    (["--test-split", "-0.1"], "argument --test-split: expected a fraction in [0, 1); got -0.1"),
    (["--val-split", "0.6", "--test-split", "0.4"],
     "--val-split + --test-split must be below 1, to leave training rows; got 0.6 + 0.4"),
    (["--test-split", "0.9"], "--val-split + --test-split must be below 1"),  # 0.2 by default
    (["--test-split", "0.1", "--test", "t.csv"],
     "argument --test: not allowed with argument --test-split"),
])
def test_bad_test_fractions_are_usage_errors(args, expected, capsys):
    assert main(["preprocess", "in.csv", "--out", "out.h5", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ooc preprocess: error: ")
    assert expected in err


@pytest.mark.parametrize(("options", "expected"), [
    ({"test_split": 1.0}, r"test_split must be in \[0, 1\); got 1.0"),
    ({"test_split": -0.5}, r"test_split must be in \[0, 1\)"),
    ({"val_split": 0.5, "test_split": 0.5}, "val_split \\+ test_split must be below 1"),
    ({"test_split": 0.1, "test_inputs": ["t.csv"]}, "test_split and test_inputs exclude"),
])
def test_bad_test_fractions_in_python(tmp_path, options, expected):
    with pytest.raises(ValueError, match=expected):
        ooc.preprocess_text(tmp_path / "in.csv", tmp_path / "out.h5", **options)


# ------------------------------------------------------------------ resume
class Crash(BaseException):
    """A crash injected into a run (not an OocError, so the work directory is kept)."""


def test_resume_with_a_test_split_equals_an_uninterrupted_run(textkit, monkeypatch):
    corpus = textkit.corpus("c.csv", docs=1200, seed=58)
    options = {"top_k": 800, "chunk_rows": 100, "test_split": 0.2}
    original, calls = ooc.text.jobs.transform, []

    def crashing(*args):
        calls.append(1)
        if len(calls) == 3:  # one bucket per split: the test split's
            raise Crash
        return original(*args)

    monkeypatch.setattr(ooc.text.jobs, "transform", crashing)
    with pytest.raises(Crash):
        textkit.preprocess(corpus, out="resumed.h5", **options)
    monkeypatch.setattr(ooc.text.jobs, "transform", original)
    # other held-out settings or test inputs do not resume this work
    for changed in ({"test_split": 0.25}, {"test_split": 0.0, "test_inputs": (str(corpus),)}):
        with pytest.raises(ResumeError, match="other settings"):
            textkit.preprocess(corpus, out="resumed.h5", resume=True, **{**options, **changed})
    assert textkit.preprocess(corpus, out="resumed.h5", resume=True, **options).resumed
    textkit.preprocess(corpus, out="straight.h5", **options)
    textkit.assert_same(textkit.load("straight.h5"), textkit.load("resumed.h5"))


def test_fingerprint_covers_the_test_inputs(textkit):
    texts, labels = textkit.docs(100, seed=59)
    train = textkit.write_csv("train.csv", texts[:80], labels[:80])
    test = textkit.write_csv("test.csv", texts[80:], labels[80:])
    config = textkit.config(train, test_inputs=(str(test),))
    before = config.fingerprint()
    test.write_text(test.read_text() + "class_0,one more row\n")
    assert config.fingerprint()["inputs"] != before["inputs"]
    assert before != replace(config, test_split=0.1, test_inputs=()).fingerprint()
