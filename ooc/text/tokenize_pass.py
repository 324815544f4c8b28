"""Pass 1 of ``ooc preprocess``: stream rows, tokenise them, count.

Worker processes tokenise chunks (and, for n-grams, count document
frequencies in chunk-local ids); this process maps local ids onto the
corpus-wide token table, appends the counts to the on-disk spill, and
writes every chunk's token ids to the work directory.  After each chunk a
checkpoint records how far it got, so ``--resume`` restarts from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .counts import SpilledCounts
from .ngram_vectorizer import ChunkCounts, NgramConfig, compact, count_chunk
from .sequence_vectorizer import SequenceConfig, WordCounter
from .spill import TokenChunk, load_chunk, save_chunk
from .splits import SPLITS, TRAIN
from .tokenize import Tokens, no_tokens_error
from .vocab import TokenTable, unpack_strings
from .workdir import WorkDir


def tokenize_chunk(config: NgramConfig | SequenceConfig, texts: list[str],
                   split: np.ndarray) -> ChunkCounts | Tokens:
    """Worker job: a chunk's n-gram document frequencies (counting training rows) and
    tokens, or its Keras words."""
    if isinstance(config, NgramConfig):
        return count_chunk(config, texts, split == TRAIN)
    return compact(config.tokenize(texts))


@dataclass
class Labels:
    """Label strings in order of first appearance, with row counts per split code."""

    table: TokenTable = field(default_factory=TokenTable)
    counts: list[np.ndarray] = field(
        default_factory=lambda: [np.zeros(0, np.int64) for _ in SPLITS])

    def add(self, labels: list[str], split: np.ndarray) -> np.ndarray:
        """Label ids of a chunk's rows (counted)."""
        distinct = list(dict.fromkeys(labels))
        index = dict(zip(distinct, self.table.add(distinct).tolist(), strict=True))
        label_ids = np.fromiter((index[v] for v in labels), np.int64, len(labels))
        self.count(label_ids, split)
        return label_ids

    def count(self, label_ids: np.ndarray, split: np.ndarray) -> None:
        """Add rows to the per-split counts."""
        for code, old in enumerate(self.counts):
            c = np.bincount(label_ids[split == code], minlength=len(self.table))
            c[: len(old)] += old
            self.counts[code] = c

    def per_class(self, code: int) -> np.ndarray:
        """Rows of one split per label id (every label id of the table)."""
        counts = np.zeros(len(self.table), np.int64)
        counts[: len(self.counts[code])] = self.counts[code]
        return counts


class Tokenizer:
    """This process's side of pass 1 for one vectorizer kind."""

    def __init__(self, config: NgramConfig | SequenceConfig, work: WorkDir) -> None:
        self.config = config
        self.ngram = isinstance(config, NgramConfig)
        self.chunk_dir = work.path / "chunks"
        self.chunk_dir.mkdir(exist_ok=True)
        self.spill = SpilledCounts(work.path / "counts", partition_bits=8) if self.ngram else None
        self._reduced = bool(work.get("vocab"))  # the spilled counts are gone
        self.table = TokenTable()
        self.words = WordCounter() if not self.ngram else None
        if self.words is not None:
            self.table = self.words.table
        self.labels = Labels()
        self.n_chunks = 0
        self.rows_per_chunk: list[tuple[int, ...]] = []  # rows per split code
        self.train_tokens = 0

    def chunk_path(self, k: int) -> Path:
        """Where chunk ``k``'s token ids are kept."""
        return self.chunk_dir / f"{k:06d}.npz"

    def add(self, result: ChunkCounts | Tokens, labels: list[str], row_ids: np.ndarray,
            split: np.ndarray) -> None:
        """Merge one tokenised chunk (in source order) and write it to disk."""
        tokens = result.tokens if isinstance(result, ChunkCounts) else result
        before = len(self.table)
        if self.words is not None:
            gids = self.words.add(tokens, split == TRAIN)
        elif tokens.dictionary is not None:
            mapping = self.table.add(tokens.dictionary)
            gids = mapping[tokens.ids]
            self.spill.add(self.config.space.remap(result.keys, mapping), result.df)
        else:
            gids = tokens.ids
            self.spill.add(result.keys, result.df)
        labels_before = len(self.labels.table)
        label_ids = self.labels.add(labels, split)
        new_words = self.table.packed(before)
        new_labels = self.labels.table.packed(labels_before)
        chunk = TokenChunk(gids.astype(np.int32), tokens.offsets, row_ids, label_ids, split)
        save_chunk(self.chunk_path(self.n_chunks), chunk, words_utf8=new_words["utf8"],
                   words_offsets=new_words["offsets"], labels_utf8=new_labels["utf8"],
                   labels_offsets=new_labels["offsets"])
        self._done(chunk)

    def _done(self, chunk: TokenChunk) -> None:
        self.rows_per_chunk.append(tuple(np.bincount(chunk.split, minlength=len(SPLITS))
                                         .tolist()))
        self.train_tokens += int(np.diff(chunk.offsets)[chunk.split == TRAIN].sum())
        self.n_chunks += 1

    def check_tokens(self, where: str) -> None:
        """Raise :func:`~ooc.text.tokenize.no_tokens_error` when no training row has a token."""
        if not self.train_tokens:
            analyzer = self.config.analyzer if isinstance(self.config, NgramConfig) else "keras"
            n_texts = sum(rows[TRAIN] for rows in self.rows_per_chunk)
            raise no_tokens_error(analyzer, n_texts, where)

    def checkpoint(self) -> dict[str, Any]:
        """What :meth:`restore` needs to continue after the chunks written so far."""
        return {"chunks": self.n_chunks, "runs": self.spill.n_runs if self.spill else None}

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        """Rebuild the tables and counts of the chunks a checkpoint recorded."""
        done = checkpoint["chunks"] if checkpoint else 0
        self.n_chunks, self.rows_per_chunk, self.train_tokens = 0, [], 0
        for k in range(done):
            chunk, extra = load_chunk(self.chunk_path(k))
            self.table.add(unpack_strings(extra["words_utf8"], extra["words_offsets"]))
            self.labels.table.add(unpack_strings(extra["labels_utf8"], extra["labels_offsets"]))
            self.labels.count(chunk.labels, chunk.split)
            if self.words is not None:
                self.words.count(chunk.of_split(TRAIN).ids.astype(np.int64))
            self._done(chunk)
        if self.spill is not None and not self._reduced:
            self.spill.truncate(checkpoint["runs"] if checkpoint else 0)
        for path in self.chunk_dir.glob("*.npz*"):
            if int(path.name[:6]) >= done:
                path.unlink()

    @property
    def chunk_paths(self) -> list[Path]:
        """Token chunk files in source order."""
        return [self.chunk_path(k) for k in range(self.n_chunks)]


def labelled_chunks(sources: Iterator[Any], split_of: Callable[[np.ndarray], np.ndarray]
                    ) -> Iterator[tuple[list[str], list[str], np.ndarray, np.ndarray]]:
    """``(texts, labels, row_ids, split)`` of every chunk of ``sources``;
    ``split_of(row_ids)`` gives the split codes."""
    for rows in sources:
        yield rows.texts, rows.labels, rows.row_ids, split_of(rows.row_ids)


class RowEstimate:
    """Estimated number of input rows, for the first pass's ETA: plain-text inputs'
    bytes divided by the bytes per row seen so far (none for compressed inputs)."""

    def __init__(self, inputs: list[str]) -> None:
        paths = [Path(p) for p in inputs]
        plain = all(p.is_file() and p.suffix in (".csv", ".tsv", ".jsonl", ".ndjson")
                    for p in paths)
        self.total_bytes = sum(p.stat().st_size for p in paths) if plain else 0
        self.rows = self.chars = 0

    def seen(self, texts: list[str], bar: Any) -> None:
        """Count a chunk's rows and update the bar's total (shown at its next update)."""
        if not self.total_bytes or not texts:
            return
        self.rows += len(texts)
        self.chars += sum(map(len, texts)) + 16 * len(texts)  # labels, quotes, separators
        bar.total = max(self.rows, int(self.total_bytes * self.rows / self.chars))
