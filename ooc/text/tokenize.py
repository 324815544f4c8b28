"""Vectorised tokenisers with the exact semantics of scikit-learn and Keras.

A chunk of documents is joined into one string and turned into an array of
code points; tokens are the runs of "token characters" found with NumPy, and
a chunk-local dictionary is built by Arrow's hash kernel.  The per-character
Python work of the reference implementations is gone, the results are not
changed:

* ``word`` (scikit-learn ``TfidfVectorizer(analyzer="word")``):
  ``str.lower``, then ``strip_accents_unicode`` (NFKD minus combining
  characters, applied only to non-ASCII documents, as scikit-learn does),
  then the tokens of ``(?u)\\b\\w\\w+\\b``, i.e. the runs of ``\\w``
  characters at least two long.  ``\\w`` is looked up in a table built from
  Python's own ``re`` over every code point, so it matches exactly.
* ``char`` (``analyzer="char"``): the same preprocessing, then runs of two or
  more whitespace characters become one space; every character is a token
  and its id is its code point.
* ``keras`` (``keras.preprocessing.text.Tokenizer``): ``str.lower``, the
  filter characters become spaces, tokens are the non-empty pieces between
  spaces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
ANALYZERS = ("word", "char", "keras")
_WHITE_SPACES = re.compile(r"\s\s+")
_N_CODE_POINTS = 0x110000


@dataclass(frozen=True)
class Tokens:
    """The tokens of a chunk of documents.

    ``ids[offsets[i]:offsets[i + 1]]`` are the tokens of document ``i``, in
    order.  An id indexes ``dictionary`` (first appearance order), or is a
    code point when ``dictionary`` is None (the char analyzer).
    """

    ids: np.ndarray
    offsets: np.ndarray
    dictionary: list[str] | None

    @property
    def n_docs(self) -> int:
        """Number of documents."""
        return len(self.offsets) - 1

    def doc_of_token(self) -> np.ndarray:
        """Index of the document of every token."""
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(self.offsets))


@cache
def _class_table(pattern: str) -> np.ndarray:
    """Bool table over all code points: does ``pattern`` match the character?"""
    every = "".join(map(chr, range(_N_CODE_POINTS)))
    kept = re.sub(f"(?!{pattern}).", "\x00", every, flags=re.DOTALL)
    return np.frombuffer(kept.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) != 0


def _keras_table(filters: str) -> np.ndarray:
    table = np.ones(_N_CODE_POINTS, dtype=bool)
    table[[ord(c) for c in filters + " "]] = False
    return table


def strip_accents_unicode(doc: str) -> str:
    """scikit-learn's ``strip_accents_unicode``: NFKD, combining marks removed."""
    if doc.isascii():
        return doc
    normalized = unicodedata.normalize("NFKD", doc)
    return "".join([c for c in normalized if not unicodedata.combining(c)])


def preprocess(docs: list[str], *, lowercase: bool = True,
               strip_accents: str | None = "unicode") -> list[str]:
    """scikit-learn's preprocessing: lowercase, then strip accents."""
    if lowercase:
        docs = [d.lower() for d in docs]
    if strip_accents == "unicode":
        docs = [d if d.isascii() else strip_accents_unicode(d) for d in docs]
    elif strip_accents is not None:
        raise ValueError(f"strip_accents must be 'unicode' or None; got {strip_accents!r}.")
    return docs


def code_points(text: str) -> np.ndarray:
    """The code points of ``text``: uint8 when it is ASCII, else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _doc_starts(docs: list[str], sep_len: int) -> np.ndarray:
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs)) + sep_len
    return np.concatenate([[0], np.cumsum(lengths)])


def _runs(mask: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of every run of True in ``mask`` at least ``min_len`` long."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    keep = (stops - starts) >= min_len
    return starts[keep], stops[keep]


def _utf8_lengths(cps: np.ndarray) -> np.ndarray:
    return (1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000))


def _dictionary_encode(cps: np.ndarray, starts: np.ndarray,
                       stops: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Ids of the substrings ``cps[starts[i]:stops[i]]`` and the distinct strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    inside = np.zeros(len(cps) + 1, dtype=np.int8)
    inside[starts] = 1  # runs are disjoint and separated: no index is hit twice
    inside[stops] = -1
    picked = cps[np.cumsum(inside[:-1], dtype=np.int8).view(bool)]
    if picked.dtype == np.uint8:
        data, char_bytes = picked, None
    else:
        text = picked.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        char_bytes = _utf8_lengths(picked)
    ends = np.cumsum(stops - starts)
    if char_bytes is not None:
        ends = np.cumsum(char_bytes)[ends - 1] if len(ends) else ends
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    arr = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(starts),
                                           [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    encoded = pc.dictionary_encode(arr)
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    words = [b.decode("utf-8", "surrogatepass") for b in encoded.dictionary.to_pylist()]
    return ids, words


def _run_tokens(docs: list[str], table: np.ndarray, min_len: int) -> Tokens:
    """Tokens = runs of characters that ``table`` accepts (the separator is a space)."""
    cps = code_points(" ".join(docs))
    mask = table[:256][cps] if cps.dtype == np.uint8 else table[cps]
    starts, stops = _runs(mask, min_len)
    ids, words = _dictionary_encode(cps, starts, stops)
    doc_of = np.searchsorted(_doc_starts(docs, 1), starts, side="right") - 1
    counts = np.bincount(doc_of, minlength=len(docs))
    return Tokens(ids, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), words)


def word_tokens(docs: list[str], *, lowercase: bool = True,
                strip_accents: str | None = "unicode") -> Tokens:
    """scikit-learn's word analyzer tokens (``(?u)\\b\\w\\w+\\b``)."""
    docs = preprocess(docs, lowercase=lowercase, strip_accents=strip_accents)
    return _run_tokens(docs, _class_table(r"\w"), 2)


def char_tokens(docs: list[str], *, lowercase: bool = True,
                strip_accents: str | None = "unicode") -> Tokens:
    """scikit-learn's char analyzer: one token (its code point) per character."""
    docs = [_WHITE_SPACES.sub(" ", d) for d in
            preprocess(docs, lowercase=lowercase, strip_accents=strip_accents)]
    cps = code_points("".join(docs)).astype(np.int64)
    return Tokens(cps, _doc_starts(docs, 0), None)


def keras_tokens(docs: list[str], *, lowercase: bool = True,
                 filters: str = KERAS_FILTERS) -> Tokens:
    """Keras ``Tokenizer``'s words: lowercase, filters become spaces, split on spaces."""
    if lowercase:
        docs = [d.lower() for d in docs]
    return _run_tokens(docs, _cached_keras_table(filters), 1)


@cache
def _cached_keras_table(filters: str) -> np.ndarray:
    return _keras_table(filters)


def tokenize(docs: list[str], analyzer: str, **options: object) -> Tokens:
    """Tokenise ``docs`` with one of :data:`ANALYZERS`."""
    functions = {"word": word_tokens, "char": char_tokens, "keras": keras_tokens}
    if analyzer not in functions:
        raise ValueError(f"analyzer must be one of {ANALYZERS}; got {analyzer!r}.")
    return functions[analyzer](docs, **options)  # type: ignore[operator]
