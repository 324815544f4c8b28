"""Tokenised rows kept on disk between the passes of ``ooc preprocess``.

The first pass tokenises every row once and writes *token chunks*: the
token ids of the rows of one input chunk plus their row ids, labels and
split.  Later passes read these instead of the text.  For the write-time
shuffle, :func:`scatter` routes every row to one of ``B`` *buckets* chosen
by a seeded hash of its row id; a bucket is small enough to load.  The
output order is the order of the hashes (ties, which practically never
happen, by row id): a uniformly random permutation that depends only on the
seed and the row ids.  Buckets are consecutive ranges of hash values, so
each is sorted on its own and the number of buckets (which follows the
memory budget) does not change the result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store._disk import writing
from ._hash import splitmix64
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
        lengths = np.diff(self.offsets)[rows]
        starts = self.offsets[:-1][rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
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


_BUCKET_FIELDS = {"ids": np.int32, "lengths": np.int64, "row_ids": np.int64,
                  "labels": np.int32, "norms": np.float64}


def bucket_dir(root: Path, split: str, bucket: int) -> Path:
    """Directory of one bucket of one split."""
    return root / split / f"{bucket:05d}"


def bucket_of(row_ids: np.ndarray, n_buckets: int, seed: int) -> np.ndarray:
    """Bucket of each row: which of ``n_buckets`` equal ranges its hash falls in."""
    high = splitmix64(row_ids, seed) >> np.uint64(32)
    return ((high * np.uint64(n_buckets)) >> np.uint64(32)).astype(np.int64)


def scatter(chunk: TokenChunk, root: Path, split: str, n_buckets: int, seed: int) -> None:
    """Append the rows of ``chunk`` (in source order) to their buckets."""
    bucket = bucket_of(chunk.row_ids, n_buckets, seed)
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
    for b in np.flatnonzero(np.diff(bounds)):
        part = chunk.take(order[bounds[b]:bounds[b + 1]])
        directory = bucket_dir(root, split, int(b))
        directory.mkdir(parents=True, exist_ok=True)
        values = {"ids": part.ids, "lengths": np.diff(part.offsets), "row_ids": part.row_ids,
                  "labels": part.labels, "norms": part.norms}
        for name, dtype in _BUCKET_FIELDS.items():
            if values[name] is not None:
                path = directory / f"{name}.bin"
                with writing(path), open(path, "ab") as f:
                    values[name].astype(dtype).tofile(f)


def load_bucket(root: Path, split: str, bucket: int, seed: int) -> TokenChunk:
    """Read one bucket, rows in the order of their seeded hashes."""
    directory = bucket_dir(root, split, bucket)
    values = {name: np.fromfile(directory / f"{name}.bin", dtype=dtype)
              if (directory / f"{name}.bin").exists() else None
              for name, dtype in _BUCKET_FIELDS.items()}
    offsets = np.concatenate([[0], np.cumsum(values["lengths"])]).astype(np.int64)
    n = len(values["row_ids"])
    chunk = TokenChunk(values["ids"], offsets, values["row_ids"], values["labels"],
                       np.full(n, SPLITS.index(split), np.uint8), values["norms"])
    order = np.lexsort((chunk.row_ids, splitmix64(chunk.row_ids, seed)))
    return chunk.take(order)
