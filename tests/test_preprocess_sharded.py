"""``ooc preprocess --shard-rows``: parts written by the workers make the dataset a
single file holds, row for row."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ooc
import ooc.preprocess
from ooc.cli import main
from ooc.format import SHARDS_MANIFEST


def n_parts(path) -> dict[str, int]:
    manifest = json.loads((path / SHARDS_MANIFEST).read_text())
    return {name: len(s["parts"]) for name, s in manifest["splits"].items()}


@pytest.mark.parametrize(("vectorizer", "fmt", "workers", "shuffle"),
                         [("ngram", "hdf5", 2, True), ("ngram", "npy", 1, True),
                          ("sequence", "hdf5", 2, True), ("ngram", "npy", 2, False)])
def test_a_sharded_dataset_holds_the_rows_of_the_single_file(textkit, monkeypatch, vectorizer,
                                                              fmt, workers, shuffle):
    # parts hold whole shuffle buckets (1,024 rows or more): smaller ones here, in both runs
    monkeypatch.setattr(ooc.preprocess, "_bucket_rows", lambda run, tok: 100)
    corpus = textkit.corpus("c.csv", docs=1500, seed=47)
    options = {"vectorizer": vectorizer, "top_k": 500, "max_length": 30, "chunk_rows": 100,
               "test_split": 0.1, "workers": workers, "shuffle": shuffle, "format": fmt}
    textkit.preprocess(corpus, out="one", **options)
    summary = textkit.preprocess(corpus, out="parts", shard_rows=250, **options)
    parts = n_parts(textkit.tmp_path / "parts")
    assert parts["train"] >= 4 and set(parts) == {"train", "val", "test"}, parts
    assert sum(summary.rows.values()) == 1500
    one, sharded = textkit.load("one"), textkit.load("parts")
    textkit.assert_same(one, sharded)
    texts = ["a few words of text", "more text here"]
    a, b = one.vectorizer.transform(texts), sharded.vectorizer.transform(texts)
    np.testing.assert_array_equal(a.toarray() if hasattr(a, "toarray") else a,
                                  b.toarray() if hasattr(b, "toarray") else b)


def test_the_cli_writes_a_sharded_dataset(textkit, capsys):
    corpus = textkit.corpus("c.csv", docs=600, seed=48)
    out = textkit.tmp_path / "ds"
    assert main(["preprocess", str(corpus), "--out", str(out), "--shard-rows", "100",
                 "--top-k", "300", "--chunk-rows", "50", "--workers", "2", "--quiet",
                 "--no-shuffle"]) == 0  # parts of whole input chunks
    parts = n_parts(out)
    assert f"in {sum(parts.values())} parts" in capsys.readouterr().out and parts["train"] >= 4
    with ooc.open(out) as ds:
        assert sum(len(s) for s in ds.splits.values()) == 600
        ds.verify()
    assert main(["info", str(out)]) == 0
