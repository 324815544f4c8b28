"""TF-IDF n-gram vectors with top-k selection by ANOVA F, fitted on streamed chunks.

The semantics are scikit-learn's ``TfidfVectorizer(ngram_range, min_df,
strip_accents="unicode")`` followed by ``SelectKBest(f_classif, k)``, the
text classification guide's n-gram pipeline:

1. *count*: document frequency of every n-gram in the training rows,
   spilled to disk by hash partition (:mod:`ooc.text.counts`), so memory
   does not grow with the number of distinct n-grams;
2. *vocabulary*: the n-grams with ``df >= min_df``; smooth idf
   ``ln((1 + n) / (1 + df)) + 1``;
3. *stats*: tf-idf of every training row, l2-normalised over the whole
   ``min_df`` vocabulary, summed per class (and squared) per feature: the
   sufficient statistics of ``f_classif``;
4. *select*: the ``top_k`` features with the highest F score; output
   columns are the selected n-grams in string order, like scikit-learn's.

Each step is a function of one chunk (a *map*) or a sum of such results (a
*reduce*); :mod:`ooc.preprocess` runs the maps in worker processes, and
:meth:`NgramVectorizer.fit` runs them in this process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse

from . import kernels
from ._common import text_list
from .counts import SpilledCounts, sum_counts
from .hashindex import HashIndex
from .labels import fit_classes
from .ngrams import (
    CHAR_BITS,
    WORD_BITS,
    KeySpace,
    document_frequencies,
    indexed_term_counts,
    term_counts,
)
from .saved import SavedVectorizer
from .tokenize import FIT_TEXTS, Tokens, no_tokens_error, tokenize
from .vocab import TokenTable, pack_strings, unpack_strings

Chunks = Iterable[tuple[list[str], Any]]


@dataclass(frozen=True)
class NgramConfig:
    """Settings of the n-gram vectorizer (defaults: the guide's)."""

    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    top_k: int = 20_000
    analyzer: str = "word"
    lowercase: bool = True
    strip_accents: str | None = "unicode"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ngram_range", tuple(int(n) for n in self.ngram_range))
        if self.analyzer not in ("word", "char"):
            raise ValueError(f"analyzer must be 'word' or 'char'; got {self.analyzer!r}.")
        if self.min_df < 1 or self.top_k < 1:
            raise ValueError(f"min_df and top_k must be >= 1; got {self.min_df}, {self.top_k}.")
        self.space  # noqa: B018  (validates ngram_range)

    @property
    def space(self) -> KeySpace:
        """How this config's n-grams are packed into integer keys."""
        bits = WORD_BITS if self.analyzer == "word" else CHAR_BITS
        return KeySpace(self.ngram_range, bits)  # type: ignore[arg-type]

    def tokenize(self, texts: list[str]) -> Tokens:
        """Tokens of ``texts`` as this config's analyzer sees them."""
        return tokenize(texts, self.analyzer, lowercase=self.lowercase,
                        strip_accents=self.strip_accents)


# ---------------------------------------------------------------- map steps
@dataclass(frozen=True)
class ChunkCounts:
    """One chunk, tokenised, with document frequencies of its training rows."""

    tokens: Tokens
    keys: np.ndarray
    df: np.ndarray


COUNT_PIECE_DOCS = 2048  # documents whose n-grams are counted at once: bounds the transients


def count_chunk(config: NgramConfig, texts: list[str], train: np.ndarray) -> ChunkCounts:
    """Tokenise a chunk and count n-gram document frequencies of rows where ``train``.

    The n-grams are made and counted ``COUNT_PIECE_DOCS`` documents at a time
    (they take about 30 bytes per token while sorted), then the pieces' counts
    are summed.  The result travels back to the main process: ids and counts
    go in the smallest integer types that hold them.
    """
    tokens = config.tokenize(texts)
    parts = [(np.zeros(0, np.uint64), np.zeros(0, np.int64))]
    for a in range(0, tokens.n_docs, COUNT_PIECE_DOCS):
        b = min(a + COUNT_PIECE_DOCS, tokens.n_docs)
        lo, hi = tokens.offsets[a], tokens.offsets[b]
        parts.append(document_frequencies(config.space, tokens.ids[lo:hi],
                                          tokens.offsets[a:b + 1] - lo, train[a:b]))
    if len(parts) > 2:
        parts = [sum_counts(np.concatenate([k for k, _ in parts]),
                            np.concatenate([d for _, d in parts]), sort=False)]
    keys, df = parts[-1]
    return ChunkCounts(compact(tokens), keys, df.astype(np.min_scalar_type(len(texts))))


def compact(tokens: Tokens) -> Tokens:
    """``tokens`` with ids in 32 bits (a chunk holds fewer than 2**31 distinct tokens), for
    the trip to the main process."""
    return replace(tokens, ids=tokens.ids.astype(np.int32))


@dataclass
class Vocabulary:
    """The ``min_df`` n-grams (sorted keys over a token id space) and their idf."""

    keys: np.ndarray
    idf: np.ndarray
    index: HashIndex | None = None

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Vocabulary index of every key, -1 for keys not in the vocabulary."""
        if self.index is None:
            self.index = HashIndex.build(np.asarray(self.keys))
        return self.index.lookup(keys)

    def tfidf(self, space: KeySpace, ids: np.ndarray, offsets: np.ndarray) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """l2-normalised tf-idf entries of a chunk: ``(row, vocabulary index, value, norms)``.

        ``norms`` are the l2 norms of the rows before normalisation.
        """
        doc, key, tf = term_counts(space, ids, offsets)
        col = self.positions(key)
        hit = col >= 0
        doc, col = doc[hit], col[hit]
        value = tf[hit] * self.idf[col]
        norms = np.sqrt(np.bincount(doc, weights=value * value, minlength=len(offsets) - 1))
        return doc, col, value / norms[doc], norms


def csr_rows(doc: np.ndarray, col: np.ndarray, value: np.ndarray, n_rows: int,
             n_cols: int) -> scipy.sparse.csr_matrix:
    """float32 CSR with sorted indices from entries whose rows are ascending."""
    order = np.argsort((doc.astype(np.int64) << 32) | col)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(doc, minlength=n_rows))])
    return scipy.sparse.csr_matrix(
        (value[order].astype(np.float32), col[order].astype(np.int32), indptr),
        shape=(n_rows, n_cols))


def class_entries(doc: np.ndarray, col: np.ndarray, value: np.ndarray,
                  y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tf-idf entries of a chunk as ``(vocabulary index, class, value)``.

    Class ids travel in the smallest unsigned type that holds every class of ``y``.
    """
    return col.astype(np.int32), y[doc].astype(np.min_scalar_type(int(y.max(initial=0)))), value


# ------------------------------------------------------------- reduce steps
def idf_of(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smooth idf."""
    return np.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def build_vocabulary(config: NgramConfig, spill: SpilledCounts, n_docs: int,
                     memory_budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce spilled counts to the sorted ``min_df`` keys and their document frequencies."""
    parts = list(spill.reduce(memory_budget, config.min_df))
    keys = np.concatenate([k for k, _ in parts]) if parts else np.zeros(0, np.uint64)
    df = np.concatenate([d for _, d in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(keys)
    return keys[order], df[order]


def compact_tokens(space: KeySpace, keys: np.ndarray,
                   n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the tokens used by ``keys`` as 0..m-1 (order kept).

    Returns the re-encoded keys (still sorted) and ``mapping`` from old ids
    to new ones (-1 for tokens no key uses).
    """
    slots = space.slots(keys)
    used = np.unique(slots[slots >= 0])
    mapping = np.full(n_tokens, -1, dtype=np.int64)
    mapping[used] = np.arange(len(used))
    return space.remap(keys, mapping), mapping


CLASS_PAIR_BYTES = 64  # key, sum, sum of squares of a (feature, class) pair, and merge copies
CLASS_ENTRY_BYTES = 56  # one buffered entry, and its pair key and position while merged
CLASS_DENSE_BYTES = 16  # sum and sum of squares of every (feature, class) pair


class ClassStats:
    """Sufficient statistics of ``f_classif`` for ``n_features`` features.

    Every sum is accumulated in the order scikit-learn's ``f_oneway`` uses
    (rows in order within a class, then classes in order), so equal columns
    give bit-equal scores and ties at the k-th score are the same ties as
    scikit-learn's.  Held densely (features x classes) when that fits in
    ``buffer_bytes``: each chunk is added in place.  Otherwise only the
    (feature, class) pairs that occur are kept, memory following the number
    of pairs (at most ``min(classes, df)`` per feature); entries are then
    buffered and merged when the buffer passes ``buffer_bytes``.
    """

    def __init__(self, class_counts: np.ndarray, n_features: int,
                 buffer_bytes: int = 64 << 20) -> None:
        self.class_counts = np.asarray(class_counts, dtype=np.int64)
        self.n_features = n_features
        n_pairs = n_features * len(self.class_counts)
        self.dense = n_pairs * CLASS_DENSE_BYTES <= buffer_bytes
        self.buffer_entries = max(1, buffer_bytes // CLASS_ENTRY_BYTES)
        # pairs feature * n_classes + class: all of them (dense) or those seen, sorted
        self.keys = np.zeros(0, np.int64)
        self.sums = np.zeros(n_pairs if self.dense else 0)
        self.sumsq = np.zeros(n_pairs if self.dense else 0)
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0

    def add(self, cols: np.ndarray, classes: np.ndarray, values: np.ndarray) -> None:
        """Add one chunk's :func:`class_entries` (chunks in row order)."""
        if self.dense:
            at = cols.astype(np.int64) * len(self.class_counts) + classes
            kernels.add_squares(self.sums, self.sumsq, at, values)
            return
        self._buffer.append((cols, classes, values))
        self._buffered += len(cols)
        if self._buffered >= self.buffer_entries:
            self._merge()

    def _merge(self) -> None:
        """Fold the buffered entries into the pairs, each sum added to in row order."""
        if not self._buffer:
            return
        n_classes = len(self.class_counts)
        pair = np.concatenate([c.astype(np.int64) * n_classes + k for c, k, _ in self._buffer])
        values = np.concatenate([v for _, _, v in self._buffer])
        self._buffer, self._buffered = [], 0
        keys = np.union1d(self.keys, pair)
        sums, sumsq = np.zeros(len(keys)), np.zeros(len(keys))
        old = np.searchsorted(keys, self.keys)
        sums[old], sumsq[old] = self.sums, self.sumsq
        at = np.searchsorted(keys, pair)
        del pair
        kernels.add_squares(sums, sumsq, at, values)
        self.keys, self.sums, self.sumsq = keys, sums, sumsq

    def _per_feature(self, pair_values: np.ndarray) -> np.ndarray:
        """Sum over classes, in class order from 0.0, of a value per pair.

        The classes where a feature is absent add 0.0, which changes nothing.
        """
        n_classes = len(self.class_counts)
        if not self.dense:
            return np.bincount(self.keys // n_classes, weights=pair_values,
                               minlength=self.n_features)
        out = np.zeros(self.n_features)
        for column in pair_values.reshape(self.n_features, n_classes).T:
            out += column
        return out

    def scores(self) -> np.ndarray:
        """ANOVA F of every feature, as ``sklearn.feature_selection.f_classif`` computes it."""
        self._merge()
        n_classes = len(self.class_counts)
        n = float(self.class_counts.sum())
        # rows of each pair's class (dense: broadcast over the features, not tiled)
        rows = (self.class_counts[self.keys % n_classes] if not self.dense
                else self.class_counts[None, :])
        squares = self.sums ** 2 if not self.dense else (self.sums ** 2).reshape(-1, n_classes)
        # a class without rows has no pairs (sparse) or zero sums (dense): it adds nothing
        of_class = np.divide(squares, rows, out=np.zeros(squares.shape),
                             where=rows > 0).reshape(-1)
        square_of_total = self._per_feature(self.sums) ** 2
        sstot = self._per_feature(self.sumsq) - square_of_total / n
        ssbn = self._per_feature(of_class) - square_of_total / n
        msb = ssbn / float(n_classes - 1)
        msw = (sstot - ssbn) / float(n - n_classes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return msb / msw


Names = Callable[[np.ndarray], Sequence[str]]


def _nan_lowest(scores: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(scores), np.finfo(np.float64).min, scores)


def top_candidates(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the features scoring at least the k-th highest score (NaN lowest):
    every feature :func:`top_k` may keep, ties at the cut included, in index order."""
    cleaned = _nan_lowest(scores)
    k = min(k, len(cleaned))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    cut = np.partition(cleaned, len(cleaned) - k)[len(cleaned) - k]
    return np.flatnonzero(cleaned >= cut)


def top_k(scores: np.ndarray, k: int, names: Names) -> np.ndarray:
    """Indices of the features ``SelectKBest(k)`` keeps, in the order of their names.

    scikit-learn stable-sorts the scores over the features in name order and
    keeps the last ``k``: at a tie, the names that sort last win.  NaN counts
    as the lowest float, as its ``_clean_nans`` makes it.  ``names(indices)``
    gives the names of some features; it is asked only about the features
    that score at least the k-th highest score.
    """
    cleaned = _nan_lowest(scores)
    candidates = top_candidates(scores, k)
    k = min(k, len(candidates))
    named = list(zip(cleaned[candidates].tolist(), names(candidates), candidates.tolist(),
                     strict=True))
    kept = sorted(named, key=lambda t: (t[0], t[1]))[len(named) - k:]
    return np.array([i for _, _, i in sorted(kept, key=lambda t: t[1])], dtype=np.intp)


# ----------------------------------------------------------- the vectorizer
class NgramVectorizer(SavedVectorizer):
    """Fit on a stream of ``(texts, labels)`` chunks; transform texts to float32 CSR.

    Fitted state: ``tokens`` (word analyzer), the ``min_df`` ``vocabulary``
    (keys and idf: needed to l2-normalise new rows), and the selected output
    columns ``selected_keys`` with their ``selected_idf``.

    >>> vec = NgramVectorizer(top_k=20_000).fit(lambda: chunks())    # doctest: +SKIP
    >>> x = vec.transform(["a new review"])                          # doctest: +SKIP
    """

    def __init__(self, config: NgramConfig | None = None, **settings: Any) -> None:
        self.config = config or NgramConfig(**settings)
        self.tokens: list[str] | None = None
        self.vocabulary: Vocabulary | None = None
        self.selected_keys = np.zeros(0, dtype=np.uint64)
        self.selected_idf = np.zeros(0, dtype=np.float64)
        self.classes_: list[Any] = []
        self._table: TokenTable | None = None
        self._selected_index: HashIndex | None = None

    # fitting -------------------------------------------------------------
    def fit(self, chunks: Chunks | Callable[[], Chunks], *, memory_budget: int = 1 << 30,
            work_dir: str | None = None) -> NgramVectorizer:
        """Fit on every chunk (read twice: a callable is called once per pass).

        Holds the whole ``min_df`` vocabulary in memory; ``ooc preprocess``
        shards it to bound memory on corpora of any size.
        """
        again = chunks if callable(chunks) else (lambda: chunks)
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="ooc-ngram-") as tmp:
            spill, table = SpilledCounts(tmp), TokenTable()
            labels: list[Any] = []
            n_tokens = 0
            for texts, y in again():
                texts = text_list(texts)
                counted = count_chunk(self.config, texts, np.ones(len(texts), bool))
                spill.add(self._global_keys(table, counted), counted.df)
                labels.extend(y)
                n_tokens += len(counted.tokens.ids)
            if not n_tokens:
                raise no_tokens_error(self.config.analyzer, len(labels), FIT_TEXTS)
            self.classes_ = fit_classes(labels)
            _, counts = np.unique(np.searchsorted(self.classes_, labels), return_counts=True)
            keys, df = build_vocabulary(self.config, spill, len(labels), memory_budget)
        self.set_vocabulary(table, keys, df, len(labels))
        class_index = {c: i for i, c in enumerate(self.classes_)}
        vocab = self.vocabulary
        stats = ClassStats(counts, len(keys), memory_budget // 4)
        for texts, y in again():
            doc, col, value, _ = self.tfidf(text_list(texts))
            stats.add(*class_entries(doc, col, value, np.array([class_index[v] for v in y])))
        chosen = top_k(stats.scores(), self.config.top_k,
                       lambda idx: self.feature_names(vocab.keys[idx]))  # type: ignore[union-attr]
        self.set_selection(vocab.keys[chosen], vocab.idf[chosen])  # type: ignore[union-attr]
        return self

    def _global_keys(self, table: TokenTable, counted: ChunkCounts) -> np.ndarray:
        if counted.tokens.dictionary is None:  # char analyzer: ids are code points
            return counted.keys
        mapping = table.add(counted.tokens.dictionary)
        return self.config.space.remap(counted.keys, mapping)

    def set_vocabulary(self, table: TokenTable | None, keys: np.ndarray, df: np.ndarray,
                       n_docs: int) -> None:
        """Install the ``min_df`` vocabulary (keys over ``table``'s token ids)."""
        if self.config.analyzer == "word" and table is not None:
            keys, mapping = compact_tokens(self.config.space, keys, len(table))
            self.set_tokens([table.words[i] for i in np.flatnonzero(mapping >= 0)])
        self.vocabulary = Vocabulary(keys, idf_of(df, n_docs), HashIndex.build(keys))

    def set_tokens(self, tokens: list[str]) -> None:
        """Install the token strings that keys refer to (word analyzer)."""
        self.tokens = tokens
        self._table = TokenTable(tokens)

    def set_selection(self, keys: np.ndarray, idf: np.ndarray) -> None:
        """Install the selected n-grams; output columns follow their strings' order."""
        order = np.argsort(np.array(self.feature_names(keys), dtype=object), kind="stable")
        self.selected_keys = np.asarray(keys, dtype=np.uint64)[order]
        self.selected_idf = np.asarray(idf, dtype=np.float64)[order]
        self._selected_index = None

    # transforming --------------------------------------------------------
    def token_ids(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` in this vectorizer's id space (-1: unknown).

        Raises :class:`~ooc.errors.NotTextsError` for a single ``str`` (as
        for anything but an iterable of ``str``).
        """
        self._check_fitted()
        tokens = self.config.tokenize(text_list(texts))
        if tokens.dictionary is None or self._table is None:
            return tokens.ids, tokens.offsets
        return self._table.lookup(tokens.dictionary)[tokens.ids], tokens.offsets

    def tfidf(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Entries over the whole ``min_df`` vocabulary, see :meth:`Vocabulary.tfidf`."""
        self._check_vocabulary()
        ids, offsets = self.token_ids(texts)
        return self.vocabulary.tfidf(self.config.space, ids, offsets)  # type: ignore[union-attr]

    def transform_ids(self, ids: np.ndarray, offsets: np.ndarray,
                      norms: np.ndarray | None = None) -> scipy.sparse.csr_matrix:
        """Selected tf-idf columns of pre-tokenised rows, float32 CSR.

        ``norms`` are the rows' l2 norms over the whole vocabulary (as
        :meth:`Vocabulary.tfidf` returns them); computed when not given.
        Only the selected n-grams are then looked up, in a small index.
        """
        self._check_fitted()
        if norms is None:
            self._check_vocabulary()
            norms = self.vocabulary.tfidf(self.config.space, ids, offsets)[3]  # type: ignore
        doc, out_col, tf = indexed_term_counts(self.config.space, ids, offsets,
                                               self._output_index())
        value = tf * self.selected_idf[out_col] / norms[doc]
        return csr_rows(doc, out_col, value, len(offsets) - 1, len(self.selected_keys))

    def _output_index(self) -> HashIndex:
        """Hash index from selected n-gram keys to output columns, cached."""
        if self._selected_index is None:
            self._selected_index = HashIndex.build(self.selected_keys)
        return self._selected_index

    def transform(self, texts: Iterable[str]) -> scipy.sparse.csr_matrix:
        """Vectorize ``texts`` (float32 CSR with sorted indices)."""
        ids, offsets = self.token_ids(texts)
        return self.transform_ids(ids, offsets)

    def get_feature_names_out(self) -> np.ndarray:
        """The n-gram of every output column."""
        self._check_fitted()
        return np.array(self.feature_names(self.selected_keys), dtype=object)

    @property
    def vocabulary_(self) -> dict[str, int]:
        """N-gram -> output column, for the selected n-grams (scikit-learn's name)."""
        return {name: i for i, name in enumerate(self.get_feature_names_out())}

    @property
    def idf_(self) -> np.ndarray:
        """idf of every output column: ``TfidfVectorizer.idf_`` of the selected n-grams."""
        self._check_fitted()
        return self.selected_idf

    def feature_names(self, keys: np.ndarray) -> list[str]:
        """The n-gram (a string, as scikit-learn names it) of every key."""
        decoded = self.config.space.decode(np.asarray(keys, dtype=np.uint64))
        if self.config.analyzer == "char":
            return ["".join(map(chr, ids)) for ids in decoded]
        words = self.tokens or []
        return [" ".join(words[i] for i in ids) for ids in decoded]

    def _check_fitted(self) -> None:
        if self.vocabulary is None and not len(self.selected_keys):
            raise ValueError("this NgramVectorizer is not fitted yet; call fit() first.")

    def _check_vocabulary(self) -> None:
        self._check_fitted()
        if self.vocabulary is None:
            raise ValueError("this NgramVectorizer holds no vocabulary to normalise rows "
                             "with; pass the rows' norms.")

    # storing -------------------------------------------------------------
    def to_arrays(self, *, vocabulary: bool = True) -> tuple[dict[str, Any],
                                                             dict[str, np.ndarray]]:
        """JSON settings and arrays that :meth:`from_arrays` restores.

        ``vocabulary=False`` leaves out ``keys`` and ``idf`` (the caller
        stores them piece by piece).
        """
        self._check_fitted()
        arrays = {"selected_keys": self.selected_keys, "selected_idf": self.selected_idf}
        if vocabulary and self.vocabulary is not None:
            arrays.update({"keys": self.vocabulary.keys, "idf": self.vocabulary.idf})
        if self.tokens is not None:
            packed = pack_strings(self.tokens)
            arrays.update({"tokens_utf8": packed["utf8"], "tokens_offsets": packed["offsets"]})
        settings = {"kind": "ngram", **asdict(self.config),
                    "classes": [str(c) for c in self.classes_]}
        return settings, arrays

    @classmethod
    def from_arrays(cls, settings: dict[str, Any],
                    arrays: dict[str, np.ndarray]) -> NgramVectorizer:
        """Rebuild a fitted vectorizer from :meth:`to_arrays`."""
        fields = {k: settings[k] for k in NgramConfig.__dataclass_fields__ if k in settings}
        vec = cls(NgramConfig(**fields))
        vec.classes_ = list(settings.get("classes", []))
        if "keys" in arrays:
            index = (HashIndex(arrays["index_keys"], arrays["index_values"])
                     if "index_keys" in arrays else None)
            vec.vocabulary = Vocabulary(np.asarray(arrays["keys"]), np.asarray(arrays["idf"]),
                                        index)
        if "tokens_utf8" in arrays:
            vec.set_tokens(unpack_strings(arrays["tokens_utf8"], arrays["tokens_offsets"]))
        vec.selected_keys = np.asarray(arrays["selected_keys"], dtype=np.uint64)
        vec.selected_idf = np.asarray(arrays["selected_idf"], dtype=np.float64)
        return vec
