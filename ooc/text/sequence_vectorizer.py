"""Token-id sequences with the semantics of Keras' ``Tokenizer`` + ``pad_sequences``.

The guide's sequence pipeline is ``Tokenizer(num_words=top_k)`` fitted on the
training texts, ``texts_to_sequences``, then ``pad_sequences`` to
``min(longest training sequence, max_length)``.  Here:

* words are ranked by descending count in the training rows, ties broken
  by first appearance (rows in source order); rank 1 is the most frequent;
* a sequence keeps the words of rank ``1 .. top_k - 1`` and drops the rest;
* sequences are padded with 0 and truncated at the front ("pre"), to
  ``min(longest training sequence, max_length)`` columns, stored int32.

Counting needs one integer per distinct word (no n-grams), so memory grows
only with the vocabulary, never with the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._common import text_list
from .labels import fit_classes
from .saved import SavedVectorizer
from .tokenize import FIT_TEXTS, KERAS_FILTERS, Tokens, keras_tokens, no_tokens_error
from .vocab import TokenTable, pack_strings, unpack_strings

_UNSEEN = np.iinfo(np.int64).max


@dataclass(frozen=True)
class SequenceConfig:
    """Settings of the sequence vectorizer (defaults: the guide's)."""

    top_k: int = 20_000
    max_length: int = 500
    lowercase: bool = True
    filters: str = KERAS_FILTERS

    def __post_init__(self) -> None:
        if self.top_k < 2 or self.max_length < 1:
            raise ValueError(f"top_k must be >= 2 and max_length >= 1; got {self.top_k}, "
                             f"{self.max_length}.")

    def tokenize(self, texts: list[str]) -> Tokens:
        """Keras' words of ``texts``."""
        return keras_tokens(texts, lowercase=self.lowercase, filters=self.filters)


class WordCounter:
    """Counts of training words and their first position, over global token ids."""

    def __init__(self) -> None:
        self.table = TokenTable()
        self.counts = np.zeros(0, dtype=np.int64)
        self.first = np.zeros(0, dtype=np.int64)
        self.position = 0

    def add(self, tokens: Tokens, train: np.ndarray) -> np.ndarray:
        """Count the training rows of a chunk; return the global ids of all its tokens."""
        gids = self.table.add(tokens.dictionary or [])[tokens.ids]
        self.count(gids[train[tokens.doc_of_token()]])
        return gids

    def count(self, seen: np.ndarray) -> None:
        """Count training tokens given by global id, in source order."""
        self._grow(len(self.table))
        self.counts += np.bincount(seen, minlength=len(self.counts))
        # only the tokens of words not seen in training before are sorted: after the
        # first chunks, few
        at = np.flatnonzero(self.first[seen] == _UNSEEN)
        distinct, first = np.unique(seen[at], return_index=True)
        self.first[distinct] = self.position + at[first]
        self.position += len(seen)

    def _grow(self, n: int) -> None:
        if n > len(self.counts):
            extra = n - len(self.counts)
            self.counts = np.concatenate([self.counts, np.zeros(extra, np.int64)])
            self.first = np.concatenate([self.first, np.full(extra, _UNSEEN, np.int64)])

    def ranks(self, top_k: int) -> tuple[np.ndarray, list[str]]:
        """Rank of every global id (0: dropped) and the kept words in rank order."""
        seen = np.flatnonzero(self.counts > 0)
        order = seen[np.lexsort((self.first[seen], -self.counts[seen]))][: top_k - 1]
        ranks = np.zeros(len(self.counts), dtype=np.int64)
        ranks[order] = np.arange(1, len(order) + 1)
        return ranks, [self.table.words[i] for i in order]


def sequence_lengths(ranks: np.ndarray, gids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Length of every row's sequence after out-of-vocabulary words are dropped."""
    doc = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return np.bincount(doc, weights=_kept_ranks(ranks, gids) > 0,
                       minlength=len(offsets) - 1).astype(np.int64)


def _kept_ranks(ranks: np.ndarray, gids: np.ndarray) -> np.ndarray:
    known = gids >= 0
    out = np.zeros(len(gids), dtype=np.int64)
    out[known] = ranks[gids[known]]
    return out


@dataclass(frozen=True)
class Ragged:
    """Rows of word ranks before padding: ``values[offsets[i]:offsets[i + 1]]`` is row
    ``i``, already cut to its last ``length`` ranks.  A quarter of the padded bytes
    (rows average far fewer words than ``length``) on their way between processes."""

    values: np.ndarray
    offsets: np.ndarray
    length: int

    def padded(self) -> np.ndarray:
        """The rows padded at the front to ``length`` (int32)."""
        n_rows = len(self.offsets) - 1
        sizes = np.diff(self.offsets)
        doc = np.repeat(np.arange(n_rows), sizes)
        col = self.length - (self.offsets[1:][doc] - np.arange(len(doc)))
        out = np.zeros((n_rows, self.length), dtype=np.int32)
        out[doc, col] = self.values
        return out


def padded(x: Any) -> Any:
    """``x`` itself, or padded where it is :class:`Ragged` (a job's rows, to be written)."""
    return x.padded() if isinstance(x, Ragged) else x


def ragged_ranks(ranks: np.ndarray, gids: np.ndarray, offsets: np.ndarray,
                 length: int) -> Ragged:
    """Rows of word ranks (out-of-vocabulary words dropped), each cut to its last
    ``length``, not yet padded."""
    n_rows = len(offsets) - 1
    rank = _kept_ranks(ranks, gids)
    doc = np.repeat(np.arange(n_rows), np.diff(offsets))
    keep = rank > 0
    doc, rank = doc[keep], rank[keep]
    ends = np.cumsum(np.bincount(doc, minlength=n_rows))
    inside = ends[doc] - 1 - np.arange(len(doc)) < length
    kept = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(doc[inside], minlength=n_rows), out=kept[1:])
    return Ragged(rank[inside].astype(np.int32), kept, length)


def pad_sequences(ranks: np.ndarray, gids: np.ndarray, offsets: np.ndarray,
                  length: int) -> np.ndarray:
    """Rows of word ranks, padded and truncated at the front to ``length`` (int32)."""
    return ragged_ranks(ranks, gids, offsets, length).padded()


class SequenceVectorizer(SavedVectorizer):
    """Fit on a stream of ``(texts, labels)`` chunks; transform texts to int32 sequences."""

    def __init__(self, config: SequenceConfig | None = None, **settings: Any) -> None:
        self.config = config or SequenceConfig(**settings)
        self.words: list[str] = []
        self.length = 0
        self.classes_: list[Any] = []
        self._table: TokenTable | None = None

    def fit(self, chunks: Iterable[tuple[list[str], Any]]
            | Callable[[], Iterable[tuple[list[str], Any]]]) -> SequenceVectorizer:
        """Fit on every chunk (read twice: a callable is called once per pass)."""
        again = chunks if callable(chunks) else (lambda: chunks)
        counter, labels = WordCounter(), []
        for texts, y in again():
            texts = text_list(texts)
            counter.add(self.config.tokenize(texts), np.ones(len(texts), bool))
            labels.extend(y)
        if not counter.position:
            raise no_tokens_error("keras", len(labels), FIT_TEXTS)
        self.classes_ = fit_classes(labels)
        self.set_words(counter.ranks(self.config.top_k)[1])
        longest = 0
        for texts, _ in again():
            lengths = sequence_lengths(*self._ids(texts))
            longest = max(longest, int(lengths.max(initial=0)))
        self.set_length(longest)
        return self

    def set_words(self, words: list[str]) -> None:
        """Install the kept words, most frequent first (rank = position + 1)."""
        self.words = list(words)
        self._table = TokenTable(self.words)

    def set_length(self, longest: int) -> None:
        """Set the padded length from the longest training sequence."""
        self.length = max(1, min(longest, self.config.max_length))

    def _ids(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._table is None:
            raise ValueError("this SequenceVectorizer is not fitted yet; call fit() first.")
        tokens = self.config.tokenize(text_list(texts))
        ranks = np.arange(1, len(self.words) + 1)
        return ranks, self._table.lookup(tokens.dictionary or [])[tokens.ids], tokens.offsets

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """Padded int32 sequences of ``texts``, ``(len(texts), self.length)``.

        Raises :class:`~ooc.errors.NotTextsError` for a single ``str`` (as
        for anything but an iterable of ``str``).
        """
        return pad_sequences(*self._ids(texts), self.length)

    def get_feature_names_out(self) -> np.ndarray:
        """Names of the output columns (sequence positions)."""
        return np.array([f"position_{i}" for i in range(self.length)], dtype=object)

    @property
    def word_index(self) -> dict[str, int]:
        """Word -> id, like Keras' ``Tokenizer.word_index`` restricted to kept words."""
        return {w: i + 1 for i, w in enumerate(self.words)}

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON settings and arrays that :meth:`from_arrays` restores."""
        packed = pack_strings(self.words)
        settings = {"kind": "sequence", **asdict(self.config), "length": self.length,
                    "classes": [str(c) for c in self.classes_]}
        return settings, {"words_utf8": packed["utf8"], "words_offsets": packed["offsets"]}

    @classmethod
    def from_arrays(cls, settings: dict[str, Any],
                    arrays: dict[str, np.ndarray]) -> SequenceVectorizer:
        """Rebuild a fitted vectorizer from :meth:`to_arrays`."""
        fields = {k: settings[k] for k in SequenceConfig.__dataclass_fields__ if k in settings}
        vec = cls(SequenceConfig(**fields))
        vec.set_words(unpack_strings(arrays["words_utf8"], arrays["words_offsets"]))
        vec.length = int(settings["length"])
        vec.classes_ = list(settings.get("classes", []))
        return vec
