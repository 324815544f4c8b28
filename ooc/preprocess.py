"""``ooc preprocess``: raw labelled text -> a vectorized, shuffled dataset on disk.

The passes, each a map over chunks (run in worker processes) and a reduce
(run here), each resumable with ``resume=True``:

1. **tokenize** (:mod:`ooc.text.tokenize_pass`): stream rows, assign the
   validation and test splits, tokenise, count on the training rows only;
2. **fit**: n-grams: the ``min_df`` vocabulary in shards, row norms, then
   per-class feature statistics and the top-k by ANOVA F, one shard at a
   time (:mod:`ooc.text.ngram_fit`); sequences: word ranks, then the longest
   training sequence;
3. **shuffle** (unless ``shuffle=False``): scatter rows into seeded buckets
   (:mod:`ooc.text.spill` over :mod:`ooc.shuffle`, the writer's shuffle too);
4. **write**: vectorize bucket by bucket and append to the dataset, which
   is committed atomically, with the fitted vectorizer stored inside.

Memory is bounded by the chunk size, the number of workers and
``memory_budget``, never by the number of rows.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ._platform import START_METHOD
from ._report import (
    bytes_on_disk,
    human_bytes,
    human_peak,
    peak_rss_bytes,
    progress_bar,
)
from .errors import CorpusError, DatasetExistsError, NoSpaceError, OocError
from .sharded_writer import ShardedWriter, create_sharded
from .store._atomic import check_output, remove, remove_dead_temporaries
from .store._disk import writing
from .store.remote import is_url
from .text import jobs, kernels, ngram_fit
from .text._common import check_decoding, describe_columns, escape
from .text.labels import check_forms, sort_classes
from .text.ngram_fit import Shards, build_shards
from .text.ngram_vectorizer import ClassStats, NgramConfig, NgramVectorizer
from .text.sequence_vectorizer import SequenceConfig, SequenceVectorizer, padded
from .text.sources import RejectLog, SourceSpec, check_limit, check_rejects_path, read_rows
from .text.spill import TokenChunk, scatter
from .text.splits import SPLITS, TEST, TRAIN, VAL, assign_splits, one_split
from .text.tokenize import warm_up
from .text.tokenize_pass import RowEstimate, Tokenizer, labelled_chunks, tokenize_chunk
from .text.workdir import (
    WorkDir,
    discard,
    input_fingerprint,
    read_state,
    same_fingerprint,
    work_path,
)
from .writer import create


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything ``ooc preprocess`` is told (defaults: the guide's)."""

    inputs: tuple[str, ...]
    out: str
    format: str = "hdf5"
    text_columns: tuple[str | int, ...] = ()
    label_column: str | int | None = None
    header: bool = True
    delimiter: str | None = None
    encoding: str = "utf-8"
    decode_errors: str = "strict"
    limit: int | None = None
    vectorizer: str = "ngram"
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    top_k: int = 20_000
    analyzer: str = "word"
    max_length: int = 500
    val_split: float = 0.2
    val_inputs: tuple[str, ...] = ()
    test_split: float = 0.0
    test_inputs: tuple[str, ...] = ()
    seed: int = 123
    shuffle: bool = True
    chunk_rows: int = 4096
    shard_rows: int | None = None
    memory_budget: int = 1 << 30
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    scheduler: str | None = None
    work_dir: str | None = None
    resume: bool = False
    restart: bool = False
    on_bad_row: str = "error"
    strict_labels: bool = False
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.vectorizer not in ("ngram", "sequence"):
            raise ValueError(f"vectorizer must be 'ngram' or 'sequence'; got {self.vectorizer!r}.")
        self.split_fractions()  # validates the split settings
        if self.resume and self.restart:
            raise ValueError("resume and restart exclude each other: --resume continues an "
                             "interrupted run, --restart discards it.")
        if self.work_dir is not None and "://" in self.work_dir:
            raise ValueError(f"work_dir must be a directory on a filesystem every worker "
                             f"reaches (a shared one on a cluster), not a URL; got "
                             f"{self.work_dir!r}.")
        if self.shard_rows is not None and self.shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1; got {self.shard_rows}.")
        if self.chunk_rows < 1 or self.workers < 1 or self.memory_budget < (16 << 20):
            raise ValueError("chunk_rows and workers must be >= 1 and memory_budget >= 16 MiB; "
                             f"got {self.chunk_rows}, {self.workers}, "
                             f"{human_bytes(self.memory_budget)}.")
        check_decoding(self.encoding, self.decode_errors)
        check_limit(self.limit)
        self.vectorizer_config()  # validates the vectorizer settings

    @property
    def all_inputs(self) -> list[str]:
        """Every input: the split ones, then the validation and test inputs."""
        return [*self.inputs, *self.val_inputs, *self.test_inputs]

    def split_fractions(self) -> tuple[float, float]:
        """The validation and test fractions of ``inputs`` (0 where separate inputs hold
        that split); see :func:`~ooc.text.splits.assign_splits`."""
        for name in ("val_split", "test_split"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1); got {getattr(self, name)}.")
        if self.test_split and self.test_inputs:
            raise ValueError("test_split and test_inputs exclude each other: the test rows "
                             "are a fraction of the inputs or separate inputs, not both.")
        val = 0.0 if self.val_inputs else self.val_split
        if val + self.test_split >= 1:
            raise ValueError(f"val_split + test_split must be below 1, to leave training rows; "
                             f"got {val} + {self.test_split}.")
        return val, self.test_split

    def vectorizer_config(self) -> NgramConfig | SequenceConfig:
        """The settings of the chosen vectorizer."""
        if self.vectorizer == "ngram":
            return NgramConfig(ngram_range=self.ngram_range, min_df=self.min_df,
                               top_k=self.top_k, analyzer=self.analyzer)
        return SequenceConfig(top_k=self.top_k, max_length=self.max_length)

    def source(self, paths: tuple[str, ...]) -> SourceSpec:
        """How to read ``paths``."""
        return SourceSpec(paths=paths, text_columns=self.text_columns,
                          label_column=self.label_column, header=self.header,
                          delimiter=self.delimiter, on_bad_row=self.on_bad_row,
                          encoding=self.encoding, decode_errors=self.decode_errors,
                          limit=self.limit)

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its ``--resume``."""
        ignored = ("resume", "restart", "progress", "workers", "scheduler", "overwrite",
                   "memory_budget", "strict_labels", "shard_rows", "work_dir")
        settings = {k: v for k, v in asdict(self).items() if k not in ignored}
        return {"settings": settings,
                "inputs": input_fingerprint(self.all_inputs)}


@dataclass
class Summary:
    """What a run produced."""

    out: str
    rows: dict[str, int]
    classes: list[str]
    n_features: int
    nnz: dict[str, int]
    bytes_written: int
    seconds: float
    peak_rss: int
    peak_rss_workers: int
    skipped: int = 0
    rejects: str | None = None
    resumed: bool = False
    note: str | None = None
    parts: int = 0  # of a sharded dataset

    def format(self) -> str:
        """A one-screen report."""
        rows = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        total = sum(self.rows.values())
        lines = [self.note or f"wrote {self.out}" + (" (resumed)" if self.resumed else ""),
                 f"  rows      {rows}",
                 f"  classes   {len(self.classes)}: "
                 f"{', '.join(escape(c) for c in self.classes[:10])}"
                 + (" ..." if len(self.classes) > 10 else ""),
                 f"  features  {self.n_features:,}"]
        if self.nnz:
            lines.append("  non-zeros " + ", ".join(f"{k} {v:,}" for k, v in self.nnz.items()))
        parts = f" in {self.parts:,} parts" if self.parts else ""
        lines += [f"  on disk   {human_bytes(self.bytes_written)}{parts}",
                  f"  time      {self.seconds:.1f} s ({total / max(self.seconds, 1e-9):,.0f} "
                  "rows/s)",
                  f"  peak RSS  {human_peak(self.peak_rss)} (this process), "
                  f"{human_peak(self.peak_rss_workers)} (largest worker)"]
        if self.skipped:
            lines.append(f"  skipped   {self.skipped:,} bad rows, listed in {self.rejects}")
        return "\n".join(lines)


class _Run:
    """State shared by the passes of one run."""

    def __init__(self, config: PreprocessConfig, pool: Any, work: WorkDir,
                 on_skip: Any) -> None:
        self.config, self.pool, self.work, self.on_skip = config, pool, work, on_skip
        self.window = 2 * config.workers
        self.state_dir = work.path / "model"

    def bar(self, desc: str, total: int | None) -> Any:
        return progress_bar(desc, total, enabled=self.config.progress)

    def map(self, fn: Any, items: Any) -> Iterator[Any]:
        return jobs.ordered_map(self.pool, fn, items, self.window)


# -------------------------------------------------------------- pass 1
def _sources(config: PreprocessConfig, on_skip: Any) -> Iterator[Any]:
    val, test = config.split_fractions()
    split_of = partial(assign_splits, val_fraction=val, test_fraction=test, seed=config.seed)
    yield from labelled_chunks(read_rows(config.source(config.inputs), config.chunk_rows,
                                         on_skip), split_of)
    for code, paths in ((VAL, config.val_inputs), (TEST, config.test_inputs)):
        if paths:
            yield from labelled_chunks(read_rows(config.source(paths), config.chunk_rows,
                                                 on_skip), one_split(code))


def tokenize_pass(run: _Run) -> Tokenizer:
    """Pass 1; returns the tokenizer holding tables, counts and chunk files."""
    tok = Tokenizer(run.config.vectorizer_config(), run.work)
    tok.restore(run.work.get("tokenize_checkpoint"))
    if run.work.get("tokenize"):
        return tok
    skip = tok.n_chunks
    bar = run.bar("tokenize", None)
    eta = RowEstimate(run.config.all_inputs)

    def items() -> Iterator[tuple[Any, ...]]:
        for k, (texts, labels, row_ids, split) in enumerate(_sources(run.config, run.on_skip)):
            eta.seen(texts, bar)
            if k >= skip:
                pending.append((labels, row_ids, split))
                yield tok.config, texts, split

    pending: deque[Any] = deque()
    for result in run.map(tokenize_chunk, items()):
        labels, row_ids, split = pending.popleft()
        tok.add(result, labels, row_ids, split)
        run.work.save("tokenize_checkpoint", tok.checkpoint())
        bar.update(len(row_ids))
    bar.close()
    run.work.save("tokenize", True)
    return tok


def resolve_classes(tok: Tokenizer, config: PreprocessConfig) -> tuple[
        list[str], np.ndarray, np.ndarray]:
    """Sorted class names, label id -> class index, and training rows per class.

    Labels written in several forms (``'1'``, ``'1.0'``) are reported by
    :func:`ooc.text.labels.check_forms`, an error with ``strict_labels``.
    """
    labels = tok.labels
    names = labels.table.words
    train = labels.per_class(TRAIN)
    held_out = {"validation": labels.per_class(VAL), "test": labels.per_class(TEST)}
    if train.sum() == 0:
        raise CorpusError(f"{', '.join(config.inputs)}: no training rows: the inputs are "
                          "empty, or every row was skipped. Check the inputs, --val-split and "
                          "--test-split.")
    check_forms([names[i] for i in np.flatnonzero(train + sum(held_out.values()))],
                strict=config.strict_labels, where=", ".join(config.all_inputs))
    seen = [names[i] for i in np.flatnonzero(train)]
    for split, counts in held_out.items():
        unseen = [names[i] for i in np.flatnonzero((counts > 0) & (train == 0))]
        if unseen:
            raise CorpusError(f"{split} rows have labels never seen in training: "
                              f"{describe_columns(unseen[:10])}. "
                              "A classifier cannot learn them; fix the labels or the split.")
    if len(seen) < 2:
        raise CorpusError(f"the training rows have {len(seen)} class(es) "
                          f"({describe_columns(seen)}); "
                          "classification needs at least 2.")
    classes = sort_classes(seen)
    position = {name: i for i, name in enumerate(classes)}
    class_of = np.array([position.get(n, -1) for n in names], dtype=np.int64)
    counts = np.array([train[names.index(c)] for c in classes], dtype=np.int64)
    return classes, class_of, counts


# -------------------------------------------------------------- pass 2
def fit_ngram(run: _Run, tok: Tokenizer, class_of: np.ndarray,
              class_counts: np.ndarray) -> NgramVectorizer:
    """Vocabulary shards, row norms, feature statistics and the top k (n-gram vectorizer)."""
    config: NgramConfig = tok.config  # type: ignore[assignment]
    n_train = int(class_counts.sum())
    if not run.work.get("vocab"):
        shards = build_shards(config, tok.spill, n_train, len(class_counts),
                              run.config.memory_budget, run.work.fresh("shards"),
                              run.config.workers, run.map)
        if not sum(shards.sizes):
            raise CorpusError(f"no n-gram occurs in at least min_df={config.min_df} training "
                              "rows; lower --min-df or add rows.")
        run.work.save("vocab", {"n_vocab": sum(shards.sizes), "shards": shards.count})
        tok.spill.remove()  # type: ignore[union-attr]  # the shards hold what they counted
    shards = Shards.load(run.work.path / "shards")
    if not run.work.get("select"):
        if shards.count > 1:  # the selection removes the hits as it reads them, so a
            _norms_by_shard(run, tok, shards)  # stopped one starts again from here
        best = _select(run, tok, shards, class_of, class_counts)
        vec = NgramVectorizer(config)
        if config.analyzer == "word":
            vec.set_tokens(tok.table.words)
        vec.set_selection(best[1], best[2])
        jobs.save_state(run.state_dir, *vec.to_arrays())
        run.work.save("select", {"n_features": len(vec.selected_keys)})
    return jobs._ngram_state(run.state_dir)


def _norms_by_shard(run: _Run, tok: Tokenizer, shards: Shards) -> None:
    """Several shards: every chunk's row norms, and its hits in each shard."""
    space = tok.config.space  # type: ignore[union-attr]
    directory = run.work.fresh("hits")
    shard_dirs = list(ngram_fit.shard_paths(shards))
    items = ((space, p, k, directory, shard_dirs, shards.part_to_shard,
              tok.spill.bits)  # type: ignore[union-attr]
             for k, p in enumerate(tok.chunk_paths))
    bar = run.bar("row norms", sum(sum(r) for r in tok.rows_per_chunk))
    for _, rows in zip(run.map(ngram_fit.chunk_norms, items), tok.rows_per_chunk, strict=True):
        bar.update(sum(rows))
    bar.close()


def _select(run: _Run, tok: Tokenizer, shards: Shards, class_of: np.ndarray,
            class_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F scores shard by shard; the running top k ``(scores, keys, idf)``.

    One shard: a sweep over the chunks computes their norms and entries, added
    here.  Several: each shard is a job of its own, its statistics held in the
    worker, which sends back only the n-grams that could make the top k.
    """
    config: NgramConfig = tok.config  # type: ignore[assignment]
    n_train = int(class_counts.sum())
    bar = run.bar("select features", n_train * shards.count)
    namer = NgramVectorizer(config)
    if config.analyzer == "word":
        namer.set_tokens(tok.table.words)
    if shards.count == 1:
        shard = shards.path(0)
        stats = ClassStats(class_counts, shards.sizes[0], run.config.memory_budget // 16)
        items = ((shard, config.space, p, class_of) for p in tok.chunk_paths)
        for entries, (n_train_rows, *_) in zip(run.map(ngram_fit.stats_one_shard, items),
                                               tok.rows_per_chunk, strict=True):
            for entry in entries:
                stats.add(*entry)
            bar.update(n_train_rows)
        found = [ngram_fit.shard_scores(stats, shard)]
    else:
        items = ((shard, s, shards.sizes[s], tok.chunk_paths, run.work.path / "hits",
                  class_of, class_counts, config.top_k,
                  run.config.memory_budget // run.config.workers // 16)
                 for s, shard in enumerate(ngram_fit.shard_paths(shards)))
        found = run.map(ngram_fit.select_in_shard, items)
    best = ngram_fit.empty_top()
    for s, (scores, keys, idf) in enumerate(found):
        best = ngram_fit.merge_top(best, scores, keys, idf, config.top_k, namer.feature_names)
        if shards.count > 1:
            # a shard's hits, most of the work directory, go as soon as it is scored (at
            # the end they took seconds to remove); here, not in the job, so that a job
            # run again after its worker died finds them
            for chunk in range(len(tok.chunk_paths)):
                ngram_fit.hits_path(run.work.path / "hits", chunk, s).unlink()
            bar.update(n_train)
    bar.close()
    return best


def fit_sequence(run: _Run, tok: Tokenizer) -> SequenceVectorizer:
    """Word ranks and the padded length (sequence vectorizer)."""
    config: SequenceConfig = tok.config  # type: ignore[assignment]
    vec = SequenceVectorizer(config)
    if not run.work.get("vocab"):
        ranks, words = tok.words.ranks(config.top_k)  # type: ignore[union-attr]
        vec.set_words(words)
        jobs.save_state(run.state_dir, vec.to_arrays()[0], {**vec.to_arrays()[1],
                                                            "ranks": ranks})
        run.work.save("vocab", {"n_words": len(words)})
    settings, arrays = jobs.load_state(run.state_dir)
    vec = SequenceVectorizer.from_arrays(settings, arrays)
    if not run.work.get("select"):
        items = ((run.state_dir, p) for p in tok.chunk_paths)
        vec.set_length(max(run.map(jobs.sequence_longest, items), default=0))
        jobs.save_state(run.state_dir, vec.to_arrays()[0],
                        {**vec.to_arrays()[1], "ranks": np.asarray(arrays["ranks"])})
        run.work.save("select", {"length": vec.length})
    return SequenceVectorizer.from_arrays(*jobs.load_state(run.state_dir))


# ---------------------------------------------------------- passes 3, 4
def _bucket_rows(run: _Run, tok: Tokenizer) -> int:
    """Rows per shuffle bucket: loading and permuting one fits its share of the budget.

    A bucket's rows are held with their token ids (about 40 bytes per token
    while permuted); at most 8,192 rows, so a job stays small next to the
    baseline of a process.  The shuffle is uniform whatever the bucket size.
    """
    (offsets,) = jobs.load_fields(tok.chunk_paths[0], "offsets")
    tokens_per_row = max(1.0, offsets[-1] / max(1, len(offsets) - 1))
    per_row = 40 * tokens_per_row + 64
    share = run.config.memory_budget // (4 * (run.config.workers + 1))
    return int(min(8192, max(1024, share // per_row)))


def shuffle_pass(run: _Run, tok: Tokenizer, rows: dict[str, int]) -> dict[str, int]:
    """Scatter rows into seeded buckets; returns the number of buckets per split.

    Chunks are gathered up to a 64th of the memory budget and scattered
    together: scattered one by one, each appended a few rows to every bucket,
    and at 3M rows the 1.3 million appends took most of the pass.
    """
    done = run.work.get("shuffle")
    if done:
        return done
    root = run.work.fresh("buckets")
    size = _bucket_rows(run, tok)
    buckets = {s: max(1, math.ceil(n / size)) for s, n in rows.items() if n}
    held: dict[str, list[TokenChunk]] = {split: [] for split in buckets}
    held_bytes, limit = 0, run.config.memory_budget // 64

    def flush() -> None:
        for split, parts in held.items():
            if parts:
                scatter(parts, root, split, buckets[split], run.config.seed)
            parts.clear()

    bar = run.bar("shuffle", sum(rows.values()))
    for path in tok.chunk_paths:
        chunk = jobs.load_with_norms(path)
        for split, parts in held.items():
            parts.append(chunk.of_split(SPLITS.index(split)))
            held_bytes += parts[-1].ids.nbytes + 32 * len(parts[-1])
        if held_bytes >= limit:
            flush()
            held_bytes = 0
        bar.update(len(chunk))
    flush()
    bar.close()
    run.work.save("shuffle", buckets)
    return buckets


def write_sources(run: _Run, tok: Tokenizer, rows: dict[str, int]) -> Iterator[
        tuple[str, tuple[Any, ...]]]:
    """``(split, source)`` of every piece to write, in output order."""
    if not run.config.shuffle:
        for split in rows:
            for path in tok.chunk_paths:
                yield split, ("chunk", path, SPLITS.index(split))
        return
    buckets = shuffle_pass(run, tok, rows)
    root = run.work.path / "buckets"
    for split, n_buckets in buckets.items():
        for b in range(n_buckets):
            yield split, ("bucket", root, split, b, run.config.seed)


def write_pass(run: _Run, tok: Tokenizer, vec: Any, classes: list[str],
               class_of: np.ndarray, rows: dict[str, int]) -> None:
    """Vectorize every row and commit the dataset (sharded with ``shard_rows``)."""
    config = run.config
    sources = list(write_sources(run, tok, {s: n for s, n in rows.items() if n}))
    names = list(vec.get_feature_names_out()) if config.vectorizer == "ngram" else None
    stored, mapping = (ngram_fit.stored_vectorizer(Shards.load(run.work.path / "shards"), vec)
                       if isinstance(vec, NgramVectorizer) else (vec, None))
    settings, arrays = stored.to_arrays()
    bar = run.bar("write", sum(rows.values()))
    open_writer = create_sharded if config.shard_rows else create
    with open_writer(config.out, config.format, overwrite=config.overwrite) as writer:
        writer.set_metadata(classes=classes, feature_names=names, config={
            "preprocess": {k: v for k, v in asdict(config).items() if k != "progress"},
            "vectorizer": settings, "run_id": run.work.get("run_id")})
        for name, arr in arrays.items():
            writer.put_array(f"vectorizer/{name}", np.asarray(arr))
        if config.vectorizer == "ngram":  # the whole vocabulary, one shard at a time
            for shard in ngram_fit.shard_paths(Shards.load(run.work.path / "shards")):
                keys, idf, _ = ngram_fit.load_shard(shard)
                writer.put_array("vectorizer/keys", ngram_fit.remap(vec, mapping, keys))
                writer.put_array("vectorizer/idf", np.asarray(idf))
        if isinstance(writer, ShardedWriter):
            items = ((writer.part(split, index), config.vectorizer, run.state_dir, group,
                      class_of) for split, index, group in part_groups(sources, rows,
                                                                        config.shard_rows))
            for n in run.map(jobs.write_part, items):
                bar.update(n)
        else:
            items = ((config.vectorizer, run.state_dir, src, class_of) for _, src in sources)
            results = run.map(jobs.transform, items)
            for (split, _), (x, y, row_ids) in zip(sources, results, strict=True):
                writer.append(split, padded(x), y, row_ids)
                bar.update(len(y))
    bar.close()


def part_groups(sources: list[tuple[str, Any]], rows: dict[str, int],
                shard_rows: int) -> Iterator[tuple[str, int, list[Any]]]:
    """``(split, part index, sources)``: consecutive sources of about ``shard_rows`` rows
    (whole shuffle buckets or input chunks, so parts hold the rows in output order)."""
    by_split: dict[str, list[Any]] = {}
    for split, src in sources:
        by_split.setdefault(split, []).append(src)
    for split, group in by_split.items():
        per_part = max(1, round(shard_rows * len(group) / max(1, rows[split])))
        for index, first in enumerate(range(0, len(group), per_part)):
            yield split, index, group[first:first + per_part]


def preprocess(config: PreprocessConfig) -> Summary:
    """Run every pass; return the summary.  Raises :class:`ooc.errors.OocError` subclasses."""
    remote = is_url(config.out)
    if remote and not config.shard_rows:
        return _preprocess_to_url(config)
    start = time.perf_counter()
    anchor = _work_anchor(config)  # the work directory is named after it
    if remote:  # sharded: the parts go straight to the URL
        from .store.remote import check_remote_output

        check_remote_output(config.out, config.overwrite)  # before any work
        anchor.parent.mkdir(parents=True, exist_ok=True)
        beside = anchor
    else:
        out = Path(config.out)
        if _finished_earlier(config, out, anchor):
            return _summary(config, start, None, True, 0, note=(
                f"already complete: {out} (an earlier run with these settings committed it; "
                f"its leftover work directory {work_path(anchor)} was removed)"))
        check_output(out, config.overwrite, config.all_inputs)
        remove_dead_temporaries(out)  # from a run killed while writing
        beside = out
    rejects_path = (beside.with_name(beside.name + ".rejects.csv")
                    if config.on_bad_row == "skip" else None)
    if rejects_path is not None:
        check_rejects_path(rejects_path)
    work = WorkDir(anchor, config.fingerprint(), config.resume, config.restart)
    try:
        with writing(work.path):  # what no pass names better
            rejects, worker_peak = _run_passes(config, work, rejects_path)
    except NoSpaceError as exc:  # the work so far is kept for --resume
        raise exc.with_hint("free space and rerun with --resume") from None
    except OocError:
        work.remove()  # bad input or settings: nothing worth resuming
        if rejects_path is not None:
            rejects_path.unlink(missing_ok=True)
        raise
    work.remove()
    if rejects is not None and not rejects.count:
        Path(rejects.path).unlink(missing_ok=True)
    return _summary(config, start, rejects, work.resumed, worker_peak)


def _work_anchor(config: PreprocessConfig) -> Path:
    """The path the run's work directory is named after (``<it>.ooc-work``): the output,
    else the output's name in ``work_dir`` or, for a URL, in the local cache."""
    if not config.work_dir and not is_url(config.out):
        return Path(config.out)
    name = config.out.rstrip("/").rsplit("/", 1)[-1]
    if config.work_dir:
        return Path(config.work_dir) / name
    from .store.remote import cache_root, url_key

    return cache_root() / "staging" / url_key(config.out) / name


def _preprocess_to_url(config: PreprocessConfig) -> Summary:
    """One file or folder: written as a staging copy in the local cache, then uploaded
    (manifest last) and removed.  The staging path follows from the URL, so ``--resume``
    finds the run's work, and a run stopped while uploading uploads again."""
    from .store.remote import check_remote_output, upload

    check_remote_output(config.out, config.overwrite)  # before any work
    staging = _work_anchor(replace(config, work_dir=None))
    staging.parent.mkdir(parents=True, exist_ok=True)
    summary = preprocess(replace(config, out=str(staging), overwrite=True))
    upload(staging, config.out, overwrite=config.overwrite)
    remove(staging)
    summary.out = config.out
    return summary


_TUPLES = ("inputs", "val_inputs", "test_inputs", "text_columns", "ngram_range")


def preprocess_text(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                    out: str | os.PathLike[str], **options: Any) -> Summary:
    """Vectorize raw labelled text into a dataset at ``out``: ``ooc preprocess`` in Python.

    ``inputs`` is one CSV/TSV, JSON Lines or folder-per-class input, or a
    list of them.  ``options`` are :class:`PreprocessConfig`'s fields, named
    as there (the CLI's options with ``_`` for ``-``; ``--val`` is
    ``val_inputs``, ``--test`` is ``test_inputs``, ``--no-header`` is
    ``header=False``, ``--no-shuffle`` is ``shuffle=False``, ``--quiet`` is
    ``progress=False``), with the same defaults.  Returns the run's
    :class:`Summary`; ``ooc.open(out)`` reads the dataset.

    >>> summary = ooc.preprocess_text("reviews.csv", "reviews.h5", top_k=5000)  # doctest: +SKIP
    """
    unknown = sorted(set(options) - set(PreprocessConfig.__dataclass_fields__))
    if unknown:
        names = ", ".join(list(PreprocessConfig.__dataclass_fields__)[2:])  # after inputs, out
        raise TypeError(f"preprocess_text() takes the options {names}; got {', '.join(unknown)}.")
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for name in ("val_inputs", "test_inputs"):
        options[name] = [os.fspath(p) for p in options.get(name, ())]
    config = {**options, "inputs": [os.fspath(p) for p in paths], "out": os.fspath(out)}
    for name in _TUPLES:  # the config is hashed for --resume: keep its types the CLI's
        if name in config:
            config[name] = tuple(config[name])
    return preprocess(PreprocessConfig(**config))


def _finished_earlier(config: PreprocessConfig, out: Path, anchor: Path) -> bool:
    """Whether ``--resume`` finds ``out`` committed by its run, stopped while cleaning up.

    A work directory left by the run that committed the dataset (``run_id``
    in both) is garbage, and is removed whatever this run asks.
    """
    state = read_state(anchor, removing=True)
    if (state is None or not state.get("run_id") or not out.exists()
            or state["run_id"] != _run_id_of(out)):
        return False
    discard(anchor)
    if config.resume and same_fingerprint(state, config.fingerprint()):
        return True
    if not config.overwrite:
        raise DatasetExistsError(
            f"{out}: this dataset is complete: an earlier run committed it and was stopped "
            f"while removing its work directory {work_path(anchor)}, which is now removed. Pass "
            "--overwrite to write it again, or choose another --out.")
    return False


def _run_id_of(out: Path) -> str | None:
    from .reader import open as open_dataset

    try:
        with open_dataset(out, verify="never") as ds:
            return ds.metadata.get("run_id")
    except (OocError, OSError):
        return None


def _start_worker() -> None:
    """Pool initializer.  Ctrl-C is the main process' to handle (one line, not a traceback
    from each worker); the pool's workers are terminated when it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_pool(context: Any, workers: int, spool: Path) -> Any:
    """A pool of ``workers`` that ignore Ctrl-C from their first instruction on.

    A spawned worker (macOS, ``OOC_PORTABLE``) spends its first second importing,
    before any initializer runs; an ignored SIGINT is inherited across exec, so
    the parent ignores it while the workers start.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return jobs.WorkerPool(context.Pool(workers, initializer=_start_worker), spool)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_passes(config: PreprocessConfig, work: WorkDir,
                rejects_path: Path | None) -> tuple[RejectLog | None, int]:
    with ExitStack() as stack:
        rejects = None if rejects_path is None else stack.enter_context(RejectLog(rejects_path))
        pool = None
        if config.scheduler is not None:
            from .text import cluster  # Dask is imported only here

            pool = stack.enter_context(cluster.connect(config.scheduler, config.workers,
                                                       work.fresh("spool")))
        elif config.workers > 1:
            warm_up()  # tables built once here are shared with the forked workers
            kernels.warm_up()
            context = multiprocessing.get_context(START_METHOD)
            pool = stack.enter_context(_start_pool(context, config.workers,
                                                   work.fresh("spool")))
        run = _Run(config, pool, work, rejects)
        tok = tokenize_pass(run)
        classes, class_of, class_counts = resolve_classes(tok, config)
        tok.check_tokens(", ".join(config.inputs))
        vec = (fit_ngram(run, tok, class_of, class_counts) if config.vectorizer == "ngram"
               else fit_sequence(run, tok))
        vec.classes_ = classes
        rows = {name: int(tok.labels.counts[code].sum()) for code, name in enumerate(SPLITS)}
        write_pass(run, tok, vec, classes, class_of, rows)
        worker_peak = max((peak_rss_bytes(p.pid) for p in multiprocessing.active_children()),
                          default=0)
        if pool is not None:
            pool.close()
    return rejects, worker_peak


def _summary(config: PreprocessConfig, start: float, rejects: RejectLog | None, resumed: bool,
             worker_peak: int, note: str | None = None) -> Summary:
    from .reader import open as open_dataset

    with open_dataset(config.out) as ds:
        nnz = {name: s.nnz for name, s in ds.splits.items() if s.is_sparse}
        n_features = next(iter(ds.splits.values())).shape[1]
        rows = {name: len(s) for name, s in ds.splits.items()}
        classes = list(ds.classes or ())
        parts = sum(len(s.get("parts", ())) for s in ds.manifest["splits"].values())
    return Summary(out=config.out, rows=rows, classes=classes,
                   n_features=n_features, nnz=nnz, bytes_written=_bytes_written(config.out),
                   seconds=time.perf_counter() - start, peak_rss=peak_rss_bytes(),
                   peak_rss_workers=worker_peak, skipped=rejects.count if rejects else 0,
                   rejects=str(rejects.path) if rejects and rejects.count else None,
                   resumed=resumed, note=note, parts=parts)


def _bytes_written(out: str) -> int:
    if is_url(out):
        from .store.remote import url_bytes

        return url_bytes(out)
    return bytes_on_disk(Path(out))
