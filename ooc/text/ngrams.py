"""N-grams as 64-bit integer keys, and per-document term counts.

An n-gram of token ids ``(t1, ..., tn)`` is the key
``sum((t_j + 1) << (bits * (n - j)))``: one ``bits``-wide slot per token,
the last token in the lowest slot, unused high slots zero.  Keys of
different orders never collide, and a key decodes back to its tokens.
Words use 25-bit slots (up to 33.5 million distinct tokens), characters
21-bit slots (every Unicode code point); ``bits * max_n`` must fit in 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .hashindex import HashIndex
from .tokenize import Tokens

WORD_BITS = 25
CHAR_BITS = 21


@dataclass(frozen=True)
class KeySpace:
    """How n-grams of ``ngram_range`` are packed into uint64 keys."""

    ngram_range: tuple[int, int]
    bits: int

    def __post_init__(self) -> None:
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"ngram_range must be (min, max) with 1 <= min <= max; "
                             f"got {self.ngram_range}.")
        if self.bits * hi > 64:
            raise ValueError(f"n-grams up to {hi} tokens do not fit in 64-bit keys with "
                             f"{self.bits}-bit tokens; use a max n of at most {64 // self.bits}.")

    @property
    def key_bits(self) -> int:
        """Bits used by a key of the longest n-gram."""
        return self.bits * self.ngram_range[1]

    @property
    def max_token(self) -> int:
        """Largest token id that fits a slot."""
        return (1 << self.bits) - 2

    def keys(self, tokens: Tokens, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every n-gram of every document: ``(keys, document index)``.

        ``ids`` replaces ``tokens.ids`` (e.g. after mapping to global ids);
        negative ids mark unknown tokens, and n-grams containing one are left out.
        """
        ids = tokens.ids if ids is None else ids
        self.check_ids(ids)
        doc = tokens.doc_of_token().astype(np.int32)
        slot = ids.astype(np.uint64)
        slot += np.uint64(1)
        unknown = ids < 0 if len(ids) and ids.min() < 0 else None
        lo, hi = self.ngram_range
        picks = [(n, self._starts(doc, unknown, n)) for n in range(lo, hi + 1)]
        total = sum(len(doc) if p is None else len(p) for _, p in picks)
        keys, docs = np.empty(total, np.uint64), np.empty(total, np.int32)
        pos = 0
        for n, starts in picks:  # fill in place: chunks are big, copies are not free
            m = len(doc) if starts is None else len(starts)
            out = keys[pos:pos + m]
            out[:] = slot if starts is None else slot[starts]
            for j in range(1, n):
                out <<= np.uint64(self.bits)
                out |= slot[starts + j]
            docs[pos:pos + m] = doc if starts is None else doc[starts]
            pos += m
        return keys, docs

    def check_ids(self, ids: np.ndarray) -> None:
        """Raise ValueError unless every token id fits a slot."""
        if len(ids) and ids.max() > self.max_token:
            raise ValueError(f"token id {int(ids.max())} does not fit a {self.bits}-bit slot; "
                             "the corpus has too many distinct tokens for this n-gram range.")

    @staticmethod
    def _starts(doc: np.ndarray, unknown: np.ndarray | None, n: int) -> np.ndarray | None:
        """Start positions of the n-grams inside one document and free of unknown tokens
        (None: every position)."""
        m = len(doc) - n + 1
        if m <= 0:
            return np.zeros(0, np.int64)
        if n == 1 and unknown is None:
            return None
        valid = doc[:m] == doc[n - 1:]
        if unknown is not None:
            for j in range(n):
                valid &= ~unknown[j:j + m]
        return np.flatnonzero(valid)

    def decode(self, keys: np.ndarray) -> list[tuple[int, ...]]:
        """Token ids of each key."""
        mask = (1 << self.bits) - 1
        out = []
        for key in keys.tolist():
            slots = []
            while key:
                slots.append((key & mask) - 1)
                key >>= self.bits
            out.append(tuple(reversed(slots)))
        return out

    def slots(self, keys: np.ndarray) -> np.ndarray:
        """Token ids of each key as a ``(len(keys), max_n)`` array, -1 for unused slots."""
        hi = self.ngram_range[1]
        mask = np.uint64((1 << self.bits) - 1)
        out = np.empty((len(keys), hi), dtype=np.int64)
        for j in range(hi):
            shift = np.uint64(self.bits * (hi - 1 - j))
            out[:, j] = ((keys >> shift) & mask).astype(np.int64) - 1
        return out

    def encode(self, slots: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`slots`."""
        key = np.zeros(len(slots), dtype=np.uint64)
        for j in range(slots.shape[1]):
            key = (key << np.uint64(self.bits)) | (slots[:, j] + 1).astype(np.uint64)
        return key

    def remap(self, keys: np.ndarray, mapping: np.ndarray) -> np.ndarray:
        """Re-encode keys after mapping every token id ``t`` to ``mapping[t]``."""
        if kernels.compiled():
            return kernels.remap_keys(keys, mapping, self.bits)
        slots = self.slots(keys)
        used = slots >= 0
        slots[used] = mapping[slots[used]]
        return self.encode(slots)


def _unique_counts(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kernels.compiled():
        return kernels.run_lengths(sorted_values)
    if not len(sorted_values):
        return sorted_values, np.zeros(0, np.int64)
    first = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    starts = np.flatnonzero(first)
    return sorted_values[starts], np.diff(np.append(starts, len(sorted_values)))


def doc_term_counts(space: KeySpace, keys: np.ndarray,
                    docs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(doc, key)`` pairs with their counts, by doc, each document's keys in
    order of first occurrence (lowest order first, as :meth:`KeySpace.keys` makes them)."""
    by_doc = np.argsort(docs, kind="stable")
    keys, docs = keys[by_doc], docs[by_doc]
    n_docs = int(docs.max()) + 1 if len(docs) else 0
    if space.key_bits + max(1, n_docs.bit_length()) <= 64:
        pairs = (docs.astype(np.uint64) << np.uint64(space.key_bits)) | keys
    else:
        pairs = (docs.astype(np.uint64) << np.uint64(32)) | np.unique(
            keys, return_inverse=True)[1].astype(np.uint64)
    _, first, counts = np.unique(pairs, return_index=True, return_counts=True)
    order = np.argsort(first)
    first = first[order]
    return docs[first], keys[first], counts[order]


def term_counts(space: KeySpace, ids: np.ndarray, offsets: np.ndarray,
                rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, n-gram key)`` pairs of tokenised rows (``ids[offsets[r]:offsets[r
    + 1]]``; negative ids unknown) with their counts, by row, each row's n-grams in order
    of first occurrence (as scikit-learn's ``CountVectorizer`` lists them); only rows
    where ``rows`` when given."""
    space.check_ids(ids)
    if kernels.compiled():
        return kernels.term_counts(ids, offsets, space.ngram_range, space.bits, rows)
    keys, docs = space.keys(Tokens(ids, offsets, None), ids)
    if rows is not None:
        keep = rows[docs]
        keys, docs = keys[keep], docs[keep]
    return doc_term_counts(space, keys, docs)


def indexed_term_counts(space: KeySpace, ids: np.ndarray, offsets: np.ndarray,
                        index: HashIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, position)`` pairs of the n-grams of tokenised rows that ``index``
    holds (its position of each), with their counts, sorted by row then position.

    The compiled kernel looks each n-gram up as it makes it and sorts only the
    hits, which for a small index (the selected n-grams) is most of the saving.
    """
    space.check_ids(ids)
    if kernels.compiled():
        return kernels.indexed_term_counts(ids, offsets, space.ngram_range, space.bits,
                                           index.slots_keys, index.slots_values, index.bits)
    row, key, count = term_counts(space, ids, offsets)
    pos = index.lookup(key)
    hit = np.flatnonzero(pos >= 0)
    order = hit[np.lexsort((pos[hit], row[hit]))]
    return row[order], pos[order], count[order]


def document_frequencies(space: KeySpace, ids: np.ndarray, offsets: np.ndarray,
                         rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and the number of rows (where ``rows``) holding each; the keys in
    whatever order is fastest (sorted by the NumPy fallback, not by the compiled kernel)."""
    if kernels.compiled():
        space.check_ids(ids)
        doc_keys = kernels.doc_distinct_keys(ids, offsets, space.ngram_range, space.bits, rows)
        return kernels.sum_by_key(doc_keys, np.ones(len(doc_keys), np.int64))
    _, doc_keys, _ = term_counts(space, ids, offsets, rows)
    doc_keys.sort()
    return _unique_counts(doc_keys)
