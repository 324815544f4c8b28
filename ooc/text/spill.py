"""Tokenised rows kept on disk between the passes of ``ooc preprocess``.

The first pass tokenises every row once and writes *token chunks*: the
token ids of the rows of one input chunk plus their row ids, labels and
split.  Later passes read these instead of the text.  For the write-time
shuffle, :func:`scatter` routes every row to one of ``B`` *buckets* of the
seeded external shuffle (:mod:`ooc.shuffle`), whose order depends only on
the seed and the row ids; a bucket is small enough to load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import shuffle
from ..store._disk import writing
from .splits import SPLITS


@dataclass(frozen=True)
class TokenChunk:
    """Tokenised rows: ``ids[offsets[i]:offsets[i+1]]`` are the tokens of row i."""

    ids: np.ndarray
    offsets: np.ndarray
    row_ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray  # split code of each row (ooc.text.splits), uint8
    norms: np.ndarray | None = None  # l2 norms of the rows' full tf-idf (n-grams only)

    def __len__(self) -> int:
        return len(self.row_ids)

    def take(self, rows: np.ndarray) -> TokenChunk:
        """The chunk of the given rows, in that order."""
        index, offsets = shuffle.take_ragged(self.offsets, rows)
        return TokenChunk(self.ids[index], offsets, self.row_ids[rows], self.labels[rows],
                          self.split[rows], None if self.norms is None else self.norms[rows])

    def of_split(self, code: int) -> TokenChunk:
        """The rows of one split (a code of :data:`~ooc.text.splits.SPLITS`)."""
        return self.take(np.flatnonzero(self.split == code))

    def pieces(self, rows: int) -> Iterator[TokenChunk]:
        """Consecutive pieces of at most ``rows`` rows."""
        for start in range(0, len(self), rows):
            yield self.take(np.arange(start, min(start + rows, len(self))))


def save_chunk(path: Path, chunk: TokenChunk, **extra: np.ndarray) -> None:
    """Write a token chunk (and extra arrays) atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(path), open(tmp, "wb") as f:
        np.savez(f, ids=chunk.ids, offsets=chunk.offsets, row_ids=chunk.row_ids,
                 labels=chunk.labels, split=chunk.split, **extra)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_chunk(path: Path) -> tuple[TokenChunk, dict[str, np.ndarray]]:
    """Read a token chunk and its extra arrays."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    fields = ("ids", "offsets", "row_ids", "labels", "split")
    return TokenChunk(*(arrays.pop(k) for k in fields)), arrays


_BUCKET_SCHEMA = shuffle.Schema(columns={"labels": ("<i4", ()), "norms": ("<f8", ())},
                                ragged={"ids": "<i4"})


def scatter(chunks: list[TokenChunk], root: Path, split: str, n_buckets: int,
            seed: int) -> None:
    """Append the rows of ``chunks`` (in order) to their buckets of split ``split``: one
    append per bucket and array, however many chunks."""
    rows = shuffle.concat([_rows(chunk) for chunk in chunks])
    shuffle.scatter(root / split, rows, n_buckets, seed, _BUCKET_SCHEMA)


def _rows(chunk: TokenChunk) -> shuffle.Rows:
    columns = {"labels": chunk.labels}
    if chunk.norms is not None:
        columns["norms"] = chunk.norms
    return shuffle.Rows(chunk.row_ids, columns, {"ids": chunk.ids}, chunk.offsets)


def load_bucket(root: Path, split: str, bucket: int, seed: int) -> TokenChunk:
    """Read one bucket of split ``split``, rows in shuffled order."""
    rows = shuffle.load_bucket(shuffle.bucket_dir(root / split, bucket), _BUCKET_SCHEMA, seed)
    n = len(rows)
    return TokenChunk(rows.ragged["ids"], rows.offsets, rows.row_ids, rows.columns["labels"],
                      np.full(n, SPLITS.index(split), np.uint8), rows.columns.get("norms"))
