"""A corpus-wide token dictionary, and strings packed into arrays for storage."""

from __future__ import annotations

from itertools import pairwise, repeat

import numpy as np


class TokenTable:
    """Token strings to global ids, assigned in order of first appearance.

    Chunks are tokenised with their own local dictionaries (in worker
    processes); :meth:`add` maps a local dictionary onto the global ids.
    """

    def __init__(self, words: list[str] | None = None) -> None:
        self.words: list[str] = []
        self.index: dict[str, int] = {}
        if words:
            self.add(words)

    def __len__(self) -> int:
        return len(self.words)

    def add(self, local_words: list[str]) -> np.ndarray:
        """Global id of every local word, adding the new ones in order of appearance."""
        out = self.lookup(local_words)
        new = np.flatnonzero(out < 0)
        if len(new):
            start = len(self.words)
            new_words = [local_words[i] for i in new.tolist()]
            # a word new here twice gets the id of its first appearance
            first = dict.fromkeys(new_words)
            self.index.update(zip(first, range(start, start + len(first)), strict=True))
            self.words.extend(first)
            out[new] = self.lookup(new_words)
        return out

    def lookup(self, local_words: list[str]) -> np.ndarray:
        """Global id of every local word, -1 for words not in the table."""
        return np.fromiter(map(self.index.get, local_words, repeat(-1, len(local_words))),
                           dtype=np.int64, count=len(local_words))


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
