"""A corpus-wide token dictionary, and strings packed into arrays for storage."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise, repeat

import numpy as np

from . import kernels


@dataclass(frozen=True)
class PackedWords:
    """Distinct words as UTF-8 bytes: word ``i`` is ``utf8[offsets[i]:offsets[i + 1]]``,
    with its 64-bit hash (:func:`ooc.text.kernels.hash_words`) in ``hashes``.

    How the compiled tokenizer hands a chunk's dictionary to the token table:
    no ``str`` object is made for a word the table already holds.
    """

    utf8: np.ndarray
    offsets: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, words: list[str]) -> PackedWords:
        """Pack (and hash) ``words``."""
        packed = pack_strings(words)
        return cls(packed["utf8"], packed["offsets"],
                   kernels.hash_words(packed["utf8"], packed["offsets"]))

    def strings(self) -> list[str]:
        """The words as ``str``."""
        return unpack_strings(self.utf8, self.offsets)


Words = list[str] | PackedWords


class TokenTable:
    """Token strings to global ids, assigned in order of first appearance.

    Chunks are tokenised with their own local dictionaries (in worker
    processes); :meth:`add` maps a local dictionary onto the global ids.
    With the compiled kernels the table is a hash table over the words'
    UTF-8 bytes (:class:`_ByteTable`), else a ``dict``.
    """

    def __init__(self, words: list[str] | None = None) -> None:
        self._table: _ByteTable | _DictTable = (_ByteTable() if kernels.compiled()
                                                else _DictTable())
        if words:
            self.add(words)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def words(self) -> list[str]:
        """Every word, by id."""
        return self._table.words()

    def add(self, local_words: Words) -> np.ndarray:
        """Global id of every local word, adding the new ones in order of appearance."""
        return self._table.ids(local_words, insert=True)

    def lookup(self, local_words: Words) -> np.ndarray:
        """Global id of every local word, -1 for words not in the table."""
        return self._table.ids(local_words, insert=False)

    def packed(self, start: int = 0) -> dict[str, np.ndarray]:
        """The words from id ``start`` on, as :func:`pack_strings` packs them."""
        return self._table.packed(start)


class _DictTable:
    """The table as a ``dict`` from ``str`` to id."""

    def __init__(self) -> None:
        self._words: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._words)

    def words(self) -> list[str]:
        return self._words

    def packed(self, start: int) -> dict[str, np.ndarray]:
        return pack_strings(self._words[start:])

    def ids(self, local_words: Words, insert: bool) -> np.ndarray:
        if isinstance(local_words, PackedWords):
            local_words = local_words.strings()
        out = np.fromiter(map(self._index.get, local_words, repeat(-1, len(local_words))),
                          dtype=np.int64, count=len(local_words))
        new = np.flatnonzero(out < 0)
        if insert and len(new):
            start = len(self._words)
            # a word new here twice gets the id of its first appearance
            first = dict.fromkeys(local_words[i] for i in new.tolist())
            self._index.update(zip(first, range(start, start + len(first)), strict=True))
            self._words.extend(first)
            out[new] = [self._index[local_words[i]] for i in new.tolist()]
        return out


class _ByteTable:
    """The table as compiled open addressing over the words' UTF-8 bytes, kept in one
    growing byte array; ``str`` objects are made only when :meth:`words` is asked."""

    def __init__(self) -> None:
        self._n = 0
        self._bits = 10
        self._hashes = np.zeros(1 << 9, np.uint64)
        self._word_at = np.zeros((1 << 9) + 1, np.int64)
        self._arena = np.zeros(1 << 12, np.uint8)
        self._slots = kernels.table_slots(self._hashes, 0, self._bits)
        self._strings: list[str] = []

    def __len__(self) -> int:
        return self._n

    def words(self) -> list[str]:
        if len(self._strings) < self._n:  # decoded once, as they are asked for
            packed = self.packed(len(self._strings))
            self._strings.extend(unpack_strings(packed["utf8"], packed["offsets"]))
        return self._strings

    def packed(self, start: int) -> dict[str, np.ndarray]:
        at = self._word_at[start:self._n + 1]
        return {"utf8": self._arena[at[0]:at[-1]].copy(), "offsets": at - at[0]}

    def ids(self, local_words: Words, insert: bool) -> np.ndarray:
        words = local_words if isinstance(local_words, PackedWords) else PackedWords.of(
            local_words)
        if insert:
            self._make_room(len(words), len(words.utf8))
        ids, self._n = kernels.table_add(self._slots, self._bits, self._hashes, self._arena,
                                         self._word_at, self._n, words.utf8, words.offsets,
                                         words.hashes, insert)
        return ids

    def _make_room(self, n_words: int, n_bytes: int) -> None:
        """Grow the arrays (doubling) for up to ``n_words`` more words of ``n_bytes``."""
        words, used = self._n + n_words, int(self._word_at[self._n])
        if words > len(self._hashes):
            size = max(words, 2 * len(self._hashes))
            self._hashes = np.resize(self._hashes, size)
            self._word_at = np.resize(self._word_at, size + 1)
        if used + n_bytes > len(self._arena):
            self._arena = np.resize(self._arena, max(used + n_bytes, 2 * len(self._arena)))
        if 2 * words > (1 << self._bits):  # at most half full
            self._bits = max(self._bits + 1, (2 * words).bit_length())
            self._slots = kernels.table_slots(self._hashes, self._n, self._bits)


def pack_strings(strings: list[str]) -> dict[str, np.ndarray]:
    """Strings as one UTF-8 byte array and int64 offsets (for storing in a dataset)."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return {"utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
            "offsets": offsets}


def unpack_strings(utf8: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Inverse of :func:`pack_strings`."""
    blob = np.asarray(utf8, dtype=np.uint8).tobytes()
    bounds = np.asarray(offsets).tolist()
    return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in pairwise(bounds)]
