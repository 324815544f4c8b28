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

from ..errors import CorpusError
from . import kernels
from .vocab import PackedWords, Words

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
ANALYZERS = ("word", "char", "keras")
_WHITE_SPACES = re.compile(r"\s\s+")
_N_CODE_POINTS = 0x110000
_NO_TABLE = np.zeros(0, dtype=bool)


@dataclass(frozen=True)
class Tokens:
    """The tokens of a chunk of documents.

    ``ids[offsets[i]:offsets[i + 1]]`` are the tokens of document ``i``, in
    order.  An id indexes ``dictionary`` (first appearance order; ``str``
    or :class:`~ooc.text.vocab.PackedWords`, which a
    :class:`~ooc.text.vocab.TokenTable` takes alike), or is a code point
    when ``dictionary`` is None (the char analyzer).
    """

    ids: np.ndarray
    offsets: np.ndarray
    dictionary: Words | None

    @property
    def n_docs(self) -> int:
        """Number of documents."""
        return len(self.offsets) - 1

    def strings(self) -> list[str] | None:
        """``dictionary`` as ``str`` (None for the char analyzer)."""
        if isinstance(self.dictionary, PackedWords):
            return self.dictionary.strings()
        return self.dictionary

    def doc_of_token(self) -> np.ndarray:
        """Index of the document of every token."""
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(self.offsets))


class ClassTable:
    """Bool table over all code points: does ``pattern`` match the character?

    Indexed like an array (``table[:128]``, ``table[code_points]``); each
    entry is worked out with Python's own ``re`` the first time it is asked
    for, since working out all 1.1 million took 0.2 s at every start.
    """

    def __init__(self, pattern: str) -> None:
        self._other = re.compile(f"(?!{pattern}).", flags=re.DOTALL)
        self._known = np.zeros(_N_CODE_POINTS, dtype=bool)
        self._value = np.zeros(_N_CODE_POINTS, dtype=bool)
        self._known[0] = True  # NUL is never a token character
        self._fill(np.arange(1, 128))

    def _fill(self, code_points: np.ndarray) -> None:
        chars = "".join(map(chr, code_points.tolist()))
        kept = self._other.sub("\x00", chars).encode("utf-32-le", "surrogatepass")
        self._value[code_points] = np.frombuffer(kept, dtype=np.uint32) != 0
        self._known[code_points] = True

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(value, known)`` per code point: the answers so far, and which are worked out."""
        return self._value, self._known

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        if isinstance(index, np.ndarray):
            missing = np.unique(index[~self._known[index]])
            if len(missing):
                self._fill(missing)
        elif not self._known[index].all():
            self._fill(np.arange(_N_CODE_POINTS)[index][~self._known[index]])
        return self._value[index]


@cache
def _class_table(pattern: str) -> ClassTable:
    return ClassTable(pattern)


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
    if min_len > 1:
        keep = (stops - starts) >= min_len
        starts, stops = starts[keep], stops[keep]
    return starts, stops


def _utf8(docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The docs joined by spaces as UTF-8 bytes, and the byte offset where each starts."""
    data = " ".join(docs).encode("utf-8", "surrogatepass")
    lengths = [len(d) if d.isascii() else len(d.encode("utf-8", "surrogatepass")) for d in docs]
    starts = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64) + 1, out=starts[1:])
    return np.frombuffer(data, dtype=np.uint8), starts


def _char_mask(data: np.ndarray, table: np.ndarray | ClassTable) -> tuple[np.ndarray, np.ndarray]:
    """Per byte: does ``table`` accept its character?  Also the continuation bytes.

    ASCII bytes are looked up directly; for the (usually few) multi-byte
    characters the code point is decoded from its lead byte and the answer
    copied to its continuation bytes.
    """
    mask = table[:128][data & 0x7F] & (data < 0x80)
    high = np.flatnonzero(data >= 0x80)
    if not len(high):
        return mask, high
    cont = high[(data[high] & 0xC0) == 0x80]
    lead = high[(data[high] & 0xC0) != 0x80]
    n_bytes = 2 + (data[lead] >= 0xE0).astype(np.int64) + (data[lead] >= 0xF0)
    cp = (data[lead] & (0x7F >> n_bytes)).astype(np.int64)
    for k in range(1, 4):
        more = n_bytes > k
        cp[more] = (cp[more] << 6) | (data[lead[more] + k] & 0x3F)
    mask[lead] = table[cp]
    mask[cont] = mask[lead[np.searchsorted(lead, cont, side="right") - 1]]
    return mask, cont


def _dictionary_encode(data: np.ndarray, starts: np.ndarray,
                       stops: np.ndarray) -> tuple[np.ndarray, Words]:
    """Ids of the byte strings ``data[starts[i]:stops[i]]`` and the distinct strings
    (in order of first appearance; packed, not decoded, by the compiled kernel)."""
    if kernels.compiled():
        ids, _, hashes, utf8, offsets = kernels.encode_runs(data, starts, stops)
        return ids, PackedWords(utf8, offsets, hashes)
    import pyarrow as pa
    import pyarrow.compute as pc

    inside = np.zeros(len(data) + 1, dtype=np.int8)
    inside[starts] = 1  # runs are disjoint and separated: no index is hit twice
    inside[stops] = -1
    picked = data[np.cumsum(inside[:-1], dtype=np.int8).view(bool)]
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(stops - starts, out=offsets[1:])
    arr = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(starts),
                                           [None, pa.py_buffer(offsets), pa.py_buffer(picked)])
    encoded = pc.dictionary_encode(arr)
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    words = [b.decode("utf-8", "surrogatepass") for b in encoded.dictionary.to_pylist()]
    return ids, words


def _token_runs(data: np.ndarray, table: np.ndarray | ClassTable,
                min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Byte ranges ``(starts, stops)`` of the runs of at least ``min_len`` characters that
    ``table`` accepts in the UTF-8 ``data``."""
    if kernels.compiled():
        value, known = table.arrays() if isinstance(table, ClassTable) else (table, _NO_TABLE)
        starts, stops, missing = kernels.token_runs(data, value, known, min_len)
        if not missing:
            return starts, stops
        _char_mask(data, table)  # works out every code point of data, then once more
        return kernels.token_runs(data, value, known, min_len)[:2]
    mask, cont = _char_mask(data, table)
    starts, stops = _runs(mask, 1)
    chars = stops - starts
    if len(cont):  # multi-byte characters count once: less their continuation bytes
        cont_before = np.zeros(len(data) + 1, dtype=np.int32)
        cont_before[cont + 1] = 1
        np.cumsum(cont_before, out=cont_before)
        chars -= cont_before[stops] - cont_before[starts]
    keep = chars >= min_len
    return starts[keep], stops[keep]


def _run_tokens(docs: list[str], table: np.ndarray | ClassTable, min_len: int) -> Tokens:
    """Tokens = runs of at least ``min_len`` characters that ``table`` accepts.

    Works on UTF-8 bytes (one byte per character for ASCII text); the
    separator between documents is a space, which no table accepts.
    """
    data, doc_starts = _utf8(docs)
    starts, stops = _token_runs(data, table, min_len)
    ids, words = _dictionary_encode(data, starts, stops)
    # tokens never straddle two documents: a document's are those starting in its bytes
    return Tokens(ids, np.searchsorted(starts, doc_starts).astype(np.int64), words)


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


def warm_up() -> None:
    """Make the character tables (and, without the compiled kernels, import Arrow for
    the dictionary encoding) now, before forking worker processes: the forked
    workers then share those pages instead of each holding its own copy."""
    if not kernels.compiled():
        import pyarrow.compute  # noqa: F401

    _class_table(r"\w")
    _cached_keras_table(KERAS_FILTERS)


TOKEN_KINDS = {"word": "a word of 2+ letters or digits", "char": "a character",
               "keras": "a word (characters other than spaces and punctuation)"}
"""What one token is, per analyzer, in words (for :func:`no_tokens_error`)."""

NO_TOKENS = ("{where}: no tokens: none of the {n_texts:,} training texts holds {token}, so "
             "there is nothing to vectorize. Check that the text column is the right one "
             "(--text-column) and that the texts are not only punctuation or symbols.")
"""The one message for a corpus without tokens, whichever vectorizer met it."""
FIT_TEXTS = "the texts given to fit"
"""How messages name the texts of a vectorizer's ``fit`` (the Python API)."""


def no_tokens_error(analyzer: str, n_texts: int, where: str) -> CorpusError:
    """The :class:`~ooc.errors.CorpusError` for training texts without any token."""
    return CorpusError(NO_TOKENS.format(where=where, n_texts=n_texts,
                                        token=TOKEN_KINDS[analyzer]))


def tokenize(docs: list[str], analyzer: str, **options: object) -> Tokens:
    """Tokenise ``docs`` with one of :data:`ANALYZERS`."""
    functions = {"word": word_tokens, "char": char_tokens, "keras": keras_tokens}
    if analyzer not in functions:
        raise ValueError(f"analyzer must be one of {ANALYZERS}; got {analyzer!r}.")
    return functions[analyzer](docs, **options)  # type: ignore[operator]
