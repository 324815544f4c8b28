"""Shared fixtures of the text preprocessing tests (``ooc preprocess`` and the vectorizers).

``textkit`` writes synthetic labelled corpora with ``tools/make_corpus.py``,
runs :func:`ooc.preprocess.preprocess` with fast test settings, reads a
dataset back into memory and compares datasets.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.sparse

import ooc
from ooc.preprocess import PreprocessConfig, Summary, preprocess

MAKE_CORPUS = Path(__file__).resolve().parents[1] / "tools" / "make_corpus.py"
SMALL_CORPUS = {"vocab": 2000, "words_per_doc": 30}
"""make_corpus options for quick corpora: a small vocabulary, short documents."""


def load_tool(path: Path, name: str) -> ModuleType:
    """Import a script of tools/ (not a package) as module ``name``, once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class SplitData:
    """One split read into memory: ``x`` (CSR or dense), ``y``, ``row_ids``."""

    x: Any
    y: np.ndarray
    row_ids: np.ndarray

    def by_row_id(self) -> SplitData:
        """The same rows ordered by row id."""
        order = np.argsort(self.row_ids, kind="stable")
        return SplitData(self.x[order], self.y[order], self.row_ids[order])


@dataclass
class Loaded:
    """A whole dataset read into memory."""

    classes: list[str] | None
    feature_names: list[str] | None
    splits: dict[str, SplitData]
    vectorizer: Any


def dense(x: Any) -> np.ndarray:
    """``x`` as a dense array (CSR matrices are expanded)."""
    return x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)


class TextKit:
    """Helpers for the preprocessing tests; see the module docstring."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.make_corpus = load_tool(MAKE_CORPUS, "_ooc_tests_make_corpus")

    def corpus(self, name: str, docs: int, **options: Any) -> Path:
        """Write a make_corpus corpus under tmp_path (SMALL_CORPUS unless overridden)."""
        path = self.tmp_path / name
        self.make_corpus.make_corpus(path, docs, **{"format": _format_of(name),
                                                     **SMALL_CORPUS, **options})
        return path

    def docs(self, n: int, **options: Any) -> tuple[list[str], list[str]]:
        """``n`` make_corpus documents in memory, labels as strings."""
        texts, labels = self.make_corpus.generate_docs(n, **{**SMALL_CORPUS, **options})
        return texts, [str(label) for label in labels]

    def write_csv(self, name: str, texts: Sequence[str], labels: Sequence[Any]) -> Path:
        """A ``label,text`` CSV written by the csv module."""
        path = self.tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["label", "text"])
            writer.writerows(zip(labels, texts, strict=True))
        return path

    def config(self, inputs: Sequence[Any], out: str | Path = "out.h5",
               **options: Any) -> PreprocessConfig:
        """A PreprocessConfig with quick defaults (one worker, no progress bars)."""
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        defaults = {"workers": 1, "progress": False, "chunk_rows": 512}
        out = out if "://" in str(out) else self.tmp_path / out  # a URL as it is
        return PreprocessConfig(inputs=tuple(str(p) for p in inputs),
                                out=str(out), **{**defaults, **options})

    def preprocess(self, inputs: Sequence[Any] | Any, out: str | Path = "out.h5",
                   **options: Any) -> Summary:
        """Run preprocess on ``inputs`` into ``tmp_path / out``."""
        return preprocess(self.config(inputs, out, **options))

    def load(self, path: str | Path) -> Loaded:
        """Read every split of the dataset at ``path`` (relative paths: under tmp_path)."""
        path = self.tmp_path / path
        with ooc.open(path, verify="always") as ds:
            splits = {name: SplitData(s.x[:], np.asarray(s.y[:]), np.asarray(s.row_ids[:]))
                      for name, s in ds.splits.items()}
            return Loaded(ds.classes, ds.feature_names, splits, ds.vectorizer)

    @staticmethod
    def assert_same(a: Loaded, b: Loaded, *, by_row_id: bool = False) -> None:
        """Equal classes, feature names, splits, row ids, labels and (exactly) x."""
        assert a.classes == b.classes
        assert a.feature_names == b.feature_names
        assert sorted(a.splits) == sorted(b.splits)
        for name in a.splits:
            sa, sb = a.splits[name], b.splits[name]
            if by_row_id:
                sa, sb = sa.by_row_id(), sb.by_row_id()
            np.testing.assert_array_equal(sa.row_ids, sb.row_ids, err_msg=name)
            np.testing.assert_array_equal(sa.y, sb.y, err_msg=name)
            assert sa.x.shape == sb.x.shape and sa.x.dtype == sb.x.dtype, name
            np.testing.assert_array_equal(dense(sa.x), dense(sb.x), err_msg=name)


def _format_of(name: str) -> str:
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".jsonl"):
        return "jsonl"
    return "csv" if name.endswith(".csv") else "folder"


@pytest.fixture
def textkit(tmp_path: Path) -> TextKit:
    """Corpora, preprocess runs and dataset comparisons under this test's tmp_path."""
    return TextKit(tmp_path)
