"""Fitting the n-gram vectorizer in ``ooc preprocess``, one vocabulary shard at a time.

The ``min_df`` vocabulary grows with the corpus (nearly every bigram seen
in two training rows joins it), so the pipeline never holds it whole.  The
count partitions are grouped into *shards* of at most
:func:`shard_features` n-grams; each shard keeps its keys, idf and hash
index on disk, and every step below holds one shard at a time:

1. **vocabulary**: reduce the spilled counts partition by partition, shard
   by shard;
2. **norms**: a row's l2 norm over the whole vocabulary, its squared tf-idf
   values gathered from every shard and summed in the row's order of first
   occurrence, as with one shard;
3. **statistics**: per shard, per-class sums of the normalised values give
   the F scores of its n-grams; a running top k (score, then key) is kept.

With one shard (small corpora) steps 2 and 3 are one sweep over the token
chunks.  With several, the norms sweep builds each chunk's n-grams once,
looks them up shard by shard and keeps the training rows' *hits*
``(row, position in the shard, count)`` in one file per chunk and shard,
so that each shard's statistics read only its hits, with no look-up.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._report import release_memory
from ..store._disk import save_npy
from . import kernels
from .counts import SpilledCounts, partition_of
from .hashindex import HashIndex
from .ngram_vectorizer import (
    CLASS_PAIR_BYTES,
    ClassStats,
    NgramConfig,
    NgramVectorizer,
    Vocabulary,
    class_entries,
    idf_of,
    top_candidates,
    top_k,
)
from .ngrams import KeySpace, term_counts
from .spill import TokenChunk, load_chunk
from .splits import TRAIN

SHARD_FEATURE_BYTES = 160  # keys, idf, hash index and transients per n-gram


def shard_features(memory_budget: int) -> int:
    """Most n-grams in one shard: an eighth of the memory budget."""
    return max(1 << 16, memory_budget // 8 // SHARD_FEATURE_BYTES)


def shard_class_pairs(memory_budget: int) -> int:
    """Most (n-gram, class) pairs one shard's class statistics may hold: an eighth of
    the memory budget."""
    return max(1 << 16, memory_budget // 8 // CLASS_PAIR_BYTES)


def class_pairs(df: np.ndarray, n_classes: int) -> int:
    """At most how many (n-gram, class) pairs occur: an n-gram in ``df`` training rows
    is in at most ``min(df, n_classes)`` classes."""
    return int(np.minimum(df, n_classes).sum())


@dataclass(frozen=True)
class Shards:
    """The vocabulary shards of one run, under ``directory``."""

    directory: Path
    part_to_shard: np.ndarray
    sizes: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of shards."""
        return len(self.sizes)

    def path(self, shard: int) -> Path:
        """Directory of one shard (``keys``, ``idf``, ``index_keys``, ``index_values``)."""
        return self.directory / f"shard-{shard:04d}"

    def save(self) -> None:
        """Record the shard layout (for resuming)."""
        (self.directory / "shards.json").write_text(json.dumps(
            {"part_to_shard": self.part_to_shard.tolist(), "sizes": list(self.sizes)}))

    @classmethod
    def load(cls, directory: Path) -> Shards:
        """Read what :meth:`save` wrote."""
        info = json.loads((directory / "shards.json").read_text())
        return cls(directory, np.array(info["part_to_shard"], np.int64), tuple(info["sizes"]))


Map = Callable[[Callable[..., Any], Iterable[tuple[Any, ...]]], Iterable[Any]]
"""Runs ``fn(*item)`` for every item and gives the results in order (a worker pool's)."""


def in_process(fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
    """A :data:`Map` that runs every job in this process."""
    return (fn(*item) for item in items)


def build_shards(config: NgramConfig, spill: SpilledCounts, n_docs: int, n_classes: int,
                 memory_budget: int, directory: Path, workers: int = 1,
                 map_jobs: Map = in_process) -> Shards:
    """Reduce the spilled counts to vocabulary shards on disk, in two rounds of jobs.

    First each group of count partitions is reduced and its ``min_df`` n-grams
    kept in files; then the partitions are given to shards in order, and each
    shard is made from its partitions' files.  A shard holds at most
    :func:`shard_features` n-grams and, with many classes, at most
    :func:`shard_class_pairs` (n-gram, class) pairs, so its class statistics
    fit in the budget too, ``workers`` shards at once; a partition never
    straddles two shards.  Each job takes its ``workers``-th of the budget.
    """
    per_worker = memory_budget // workers
    target, pair_target = shard_features(per_worker), shard_class_pairs(per_worker)
    parts_dir = directory / "partitions"
    parts_dir.mkdir()
    reduce_budget = per_worker // 2
    groups = spill.groups(reduce_budget)
    # a few jobs a worker, each a run of consecutive groups: a job reads every run's
    # header once, and there is one run per chunk
    n_jobs = max(1, min(len(groups), 4 * workers))
    found: dict[int, tuple[int, int]] = {}  # partition -> n-grams, (n-gram, class) pairs
    for sizes in map_jobs(reduce_groups, ((spill.directory, spill.bits, part.tolist(),
                                           reduce_budget, config.min_df, n_classes, parts_dir)
                                          for part in np.array_split(np.array(groups),
                                                                     n_jobs) if len(part))):
        found.update(sizes)
    part_to_shard = np.zeros(spill.n_parts, dtype=np.int64)
    shard_parts: list[list[int]] = [[]]
    held = [0, 0]
    for part in sorted(found):
        n, pairs = found[part]
        if shard_parts[-1] and (held[0] + n > target or held[1] + pairs > pair_target):
            shard_parts.append([])
            held = [0, 0]
        shard_parts[-1].append(part)
        part_to_shard[part] = len(shard_parts) - 1
        held[0] += n
        held[1] += pairs
    part_to_shard = np.maximum.accumulate(part_to_shard)  # partitions with no n-gram
    sizes = tuple(map_jobs(make_shard, ((directory, s, parts, parts_dir, n_docs)
                                        for s, parts in enumerate(shard_parts))))
    shutil.rmtree(parts_dir)
    shards = Shards(directory, part_to_shard, sizes)
    shards.save()
    return shards


def partition_path(directory: Path, part: int, what: str) -> Path:
    """Where :func:`reduce_groups` keeps one partition's ``keys`` or ``df``."""
    return directory / f"{part:04d}-{what}.npy"


def reduce_groups(spill_dir: Path, bits: int, groups: list[tuple[int, int]],
                  memory_budget: int, min_df: int, n_classes: int,
                  out: Path) -> dict[int, tuple[int, int]]:
    """Job: reduce groups of count partitions (``[first, stop)`` each), one at a time;
    keep each partition's n-grams in at least ``min_df`` training rows (keys, sorted, and
    df) under ``out``; their numbers of n-grams and of (n-gram, class) pairs at most."""
    spill = SpilledCounts(spill_dir, bits)
    found = {}
    for first, stop in groups:
        pieces: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for part, keys, df in spill.reduce_group(first, stop, memory_budget, min_df):
            pieces.setdefault(part, []).append((keys, df))
        for part, kept in pieces.items():
            keys = np.concatenate([k for k, _ in kept])
            df = np.concatenate([d for _, d in kept])
            save_npy(partition_path(out, part, "keys"), keys)
            save_npy(partition_path(out, part, "df"), df)
            found[part] = (len(keys), class_pairs(df, n_classes))
        del pieces
        release_memory()
    return found


def make_shard(directory: Path, s: int, parts: list[int], parts_dir: Path, n_docs: int) -> int:
    """Job: shard ``s`` from its partitions' files (keys, idf, hash index); its size."""
    from .jobs import save_state

    keys = np.concatenate([np.zeros(0, np.uint64)] + [
        np.load(partition_path(parts_dir, p, "keys")) for p in parts])
    df = np.concatenate([np.zeros(0, np.int64)] + [
        np.load(partition_path(parts_dir, p, "df")) for p in parts])
    index = HashIndex.build(keys)
    save_state(directory / f"shard-{s:04d}", {"n": len(keys)},
               {"keys": keys, "idf": idf_of(df, n_docs), "index_keys": index.slots_keys,
                "index_values": index.slots_values})
    return len(keys)


def load_shard(path: Path) -> tuple[np.ndarray, np.ndarray, HashIndex]:
    """Keys, idf and hash index of one shard, memory-mapped."""
    from .jobs import load_state

    _, arrays = load_state(path)
    return arrays["keys"], arrays["idf"], HashIndex(arrays["index_keys"],
                                                    arrays["index_values"])


def hits_path(directory: Path, chunk: int, shard: int) -> Path:
    """Where the training rows' hits of one chunk in one shard are kept."""
    return directory / f"{chunk:06d}-{shard:04d}.npy"


def save_hits(directory: Path, chunk: int, shard: int, rows: np.ndarray, pos: np.ndarray,
              tf: np.ndarray) -> None:
    """Keep ``(row, position in the shard, count)`` of a chunk's hits in one shard, the
    count in the smallest type that holds it (usually one byte)."""
    tf_type = np.min_scalar_type(int(tf.max(initial=0)))
    hits = np.empty(len(rows), dtype=[("row", "<i4"), ("pos", "<i4"), ("tf", tf_type)])
    hits["row"], hits["pos"], hits["tf"] = rows, pos, tf
    save_npy(hits_path(directory, chunk, shard), hits)


def read_hits(directory: Path, chunk: int, shard: int) -> np.ndarray:
    """The hits :func:`save_hits` kept for one chunk and shard."""
    return np.load(hits_path(directory, chunk, shard))


def merge_top(best: tuple[np.ndarray, np.ndarray, np.ndarray], scores: np.ndarray,
              keys: np.ndarray, idf: np.ndarray, k: int,
              names: Callable[[np.ndarray], Sequence[str]]) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """The ``k`` of ``best`` and a shard's ``(scores, keys, idf)`` that
    :func:`~ooc.text.ngram_vectorizer.top_k` keeps (``names(keys)``: their n-grams)."""
    all_scores = np.concatenate([best[0], scores])
    all_keys = np.concatenate([best[1], keys])
    all_idf = np.concatenate([best[2], idf])
    kept = top_k(all_scores, k, lambda idx: names(all_keys[idx]))
    return all_scores[kept], all_keys[kept], all_idf[kept]


def shard_scores(stats: ClassStats, shard: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F scores of every n-gram of a shard from its class statistics; keys and idf."""
    keys, idf, _ = load_shard(shard)
    return stats.scores(), np.asarray(keys), np.asarray(idf)


def empty_top() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A running top k with nothing in it yet."""
    return np.zeros(0), np.zeros(0, np.uint64), np.zeros(0)


def used_tokens(shards: Shards, space: KeySpace, n_tokens: int) -> np.ndarray:
    """Old-to-new token ids keeping only tokens some vocabulary n-gram uses (-1: dropped).

    The stored vectorizer keeps only those token strings: validation-only
    and rare words stay out of the dataset.
    """
    used = np.zeros(n_tokens, dtype=bool)
    for shard in shard_paths(shards):
        slots = space.slots(np.asarray(load_shard(shard)[0]))
        used[slots[slots >= 0]] = True
    mapping = np.full(n_tokens, -1, dtype=np.int64)
    mapping[used] = np.arange(int(used.sum()))
    return mapping


def stored_vectorizer(shards: Shards, vec: NgramVectorizer) -> tuple[NgramVectorizer,
                                                                      np.ndarray | None]:
    """The vectorizer as the dataset stores it: n-gram keys renumbered over only the
    tokens the vocabulary uses (``mapping``: pipeline token id -> stored id)."""
    if vec.tokens is None:
        return vec, None
    mapping = used_tokens(shards, vec.config.space, len(vec.tokens))
    stored = NgramVectorizer(vec.config)
    stored.classes_ = vec.classes_
    stored.set_tokens([vec.tokens[i] for i in np.flatnonzero(mapping >= 0)])
    stored.selected_keys = remap(vec, mapping, vec.selected_keys)
    stored.selected_idf = vec.selected_idf
    return stored, mapping


def remap(vec: NgramVectorizer, mapping: np.ndarray | None, keys: np.ndarray) -> np.ndarray:
    """``keys`` renumbered by :func:`stored_vectorizer`'s ``mapping``."""
    keys = np.asarray(keys)
    return keys if mapping is None else vec.config.space.remap(keys, mapping)


def shard_paths(shards: Shards) -> Iterator[Path]:
    """Every shard's directory, in order."""
    for s in range(shards.count):
        yield shards.path(s)


# ------------------------------------------------- map steps (worker processes)
def stats_one_shard(shard: Path, space: KeySpace, chunk_path: Path,
                    classes: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """One sweep when the vocabulary is one shard: a chunk's training entries
    ``(position, class, value)`` and the l2 norms of all its rows (saved beside it)."""
    from .jobs import PIECE_ROWS, norms_path

    keys, idf, index = load_shard(shard)
    vocabulary = Vocabulary(keys, idf, index)
    chunk = load_chunk(chunk_path)[0]
    entries, norms = [], []
    for piece in chunk.pieces(PIECE_ROWS):
        doc, col, value, piece_norms = vocabulary.tfidf(space, piece.ids.astype(np.int64),
                                                        piece.offsets)
        keep = piece.split[doc] == TRAIN
        entries.append(class_entries(doc[keep], col[keep], value[keep],
                                     classes[piece.labels]))
        norms.append(piece_norms)
    save_npy(norms_path(chunk_path), np.concatenate(norms) if norms else np.zeros(0))
    return entries


def chunk_term_counts(space: KeySpace, tokens: TokenChunk) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """``(row, n-gram key, count)`` of every row of a chunk, by row, each row's n-grams in
    order of first occurrence (:func:`~ooc.text.ngrams.term_counts`), made
    :data:`~ooc.text.jobs.PIECE_ROWS` rows at a time."""
    from .jobs import PIECE_ROWS

    rows, keys, tfs = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)]
    start = 0
    for piece in tokens.pieces(PIECE_ROWS):
        row, key, tf = term_counts(space, piece.ids.astype(np.int64), piece.offsets)
        rows.append(row + start)
        keys.append(key)
        tfs.append(tf)
        start += len(piece)
    return np.concatenate(rows), np.concatenate(keys), np.concatenate(tfs)


def chunk_norms(space: KeySpace, chunk_path: Path, chunk: int, directory: Path,
                shards: list[Path], part_to_shard: np.ndarray, partition_bits: int) -> None:
    """A chunk's row norms over the whole vocabulary (saved beside it), and its training
    rows' hits in every shard (:func:`save_hits`).

    Each row's squares are summed in its n-grams' order of first occurrence, as with one
    shard (:meth:`Vocabulary.tfidf`), so the norms and the F scores built on them are the
    same floats however many shards the vocabulary took.
    """
    from .jobs import norms_path

    tokens = load_chunk(chunk_path)[0]
    rows, keys, tf = chunk_term_counts(space, tokens)
    train = tokens.split[rows] == TRAIN
    order, bounds = kernels.group_order(part_to_shard[partition_of(keys, partition_bits)],
                                        len(shards))
    # n-grams outside the vocabulary add 0.0, which leaves every partial sum as it was
    squares = np.zeros(len(keys))
    for s, shard in enumerate(shards):
        _, idf, index = load_shard(shard)
        save_hits(directory, chunk, s, *kernels.shard_hits(
            keys, tf, rows, train, order[bounds[s]:bounds[s + 1]], index, idf, squares))
    save_npy(norms_path(chunk_path), np.sqrt(np.bincount(rows, squares,
                                                         minlength=len(tokens))))


def select_in_shard(shard: Path, s: int, n_features: int, chunk_paths: list[Path],
                    directory: Path, classes: np.ndarray, class_counts: np.ndarray, k: int,
                    buffer_bytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard's F scores, its chunks' entries added in row order as in one process;
    ``(scores, keys, idf)`` of the n-grams that could be in the top ``k`` (ties included),
    so that only those go back to be merged."""
    from .jobs import load_fields, norms_path

    stats = ClassStats(class_counts, n_features, buffer_bytes)
    idf = np.asarray(load_shard(shard)[1])
    for chunk, chunk_path in enumerate(chunk_paths):
        (labels,) = load_fields(chunk_path, "labels")
        hits = read_hits(directory, chunk, s)
        row, pos = hits["row"], hits["pos"]
        value = hits["tf"] * idf[pos] / np.load(norms_path(chunk_path))[row]
        stats.add(*class_entries(row, pos, value, classes[labels]))
        del hits, row, pos, value
        release_memory()  # a chunk's transients, as after every job
    scores, keys, idf = shard_scores(stats, shard)
    keep = top_candidates(scores, k)
    return scores[keep], keys[keep], idf[keep]
