"""Explore a labelled text corpus before choosing a model, in one streaming pass.

This is step 2 of Google's text-classification guide ("Explore your data"),
out-of-core: :func:`explore` reads the rows of a :class:`~ooc.text.sources.SourceSpec`
once, in chunks, and returns an :class:`ExploreReport`:

* the number of samples and of classes, and the samples per class;
* the median number of words per sample, words counted as the guide counts
  them (``len(text.split())``), the ratio *samples / median words per
  sample*, and the guide's model choice: below :data:`RATIO_THRESHOLD`,
  n-gram vectors and an MLP, otherwise sequence vectors and a sepCNN;
* the most frequent n-grams by total count over all samples, tokens as
  scikit-learn's ``CountVectorizer(strip_accents="unicode")`` sees them
  (:func:`ooc.text.tokenize.word_tokens`), ties broken by the n-gram string;
* the distribution of sample lengths in words and in characters: min,
  percentiles 5/25/50/75/95, max, mean and a 50-bin histogram (the bins of
  ``numpy.histogram(lengths, 50)``).

Memory is bounded, never by the number of samples: lengths are kept as a
histogram indexed by length (:class:`LengthHistogram`), which gives exact
medians and percentiles; n-grams are counted exactly with
:class:`~ooc.text.counts.SpilledCounts`, which spills partial counts to a
temporary directory and merges them within ``memory_budget``.  What does
grow is the token table (one entry per distinct word) and the temporary
files on disk (about 16 bytes per distinct n-gram per chunk).

:func:`plot_report` draws the guide's three plots (class distribution,
sample length distribution, n-gram frequency distribution) as PNG files;
matplotlib is imported only there.  ``ooc explore`` is the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._report import human_bytes, progress_bar
from .errors import CorpusError, MissingDependencyError
from .text.counts import SpilledCounts
from .text.labels import check_forms, sort_classes
from .text.ngrams import WORD_BITS, KeySpace
from .text.sources import BadRow, Rows, SourceSpec, read_rows
from .text.tokenize import word_tokens
from .text.vocab import TokenTable

__all__ = ["ExploreReport", "LengthHistogram", "LengthStats", "MissingDependencyError",
           "explore", "plot_report", "recommend"]

RATIO_THRESHOLD = 1500
"""Below this samples/words-per-sample ratio the guide picks n-gram vectors and an MLP."""
NGRAM_MODEL = ("n-gram vectors + MLP (ooc preprocess --vectorizer ngram, "
               "tools/train_ngram_model.py)")
SEQUENCE_MODEL = ("sequence vectors + sepCNN (ooc preprocess --vectorizer sequence, "
                  "tools/train_sequence_model.py)")
PERCENTILES = (5, 25, 50, 75, 95)
HISTOGRAM_BINS = 50
DEFAULT_MEMORY_BUDGET = 256 << 20
PLOT_FILES = ("class_distribution.png", "sample_length_distribution.png",
              "ngram_frequency_distribution.png")


def recommend(ratio: float) -> str:
    """The guide's model choice for a samples / median-words-per-sample ratio."""
    return NGRAM_MODEL if ratio < RATIO_THRESHOLD else SEQUENCE_MODEL


# ------------------------------------------------------------ lengths
@dataclass(frozen=True)
class LengthStats:
    """Summary of a length distribution (``unit`` is ``"words"`` or ``"characters"``).

    ``percentiles`` maps ``"5"``, ``"25"``, ... to ``numpy.percentile``'s
    (linear) value; ``bin_edges``/``bin_counts`` are ``numpy.histogram(lengths, 50)``.
    """

    unit: str
    min: int
    max: int
    mean: float
    median: float
    percentiles: dict[str, float]
    bin_edges: list[float]
    bin_counts: list[int]


class LengthHistogram:
    """Exact distribution of non-negative integer lengths, in memory bounded by the longest.

    Lengths up to ``dense_limit`` are counted in an int64 array indexed by
    length that grows to the longest length seen; the rare longer ones in a
    dict.  Medians and percentiles are exact.
    """

    def __init__(self, dense_limit: int = 1 << 20) -> None:
        self.dense_limit = dense_limit
        self.dense = np.zeros(0, dtype=np.int64)
        self.sparse: Counter[int] = Counter()

    def add(self, lengths: np.ndarray) -> None:
        """Count a batch of lengths."""
        lengths = np.asarray(lengths, dtype=np.int64)
        long = lengths >= self.dense_limit
        if long.any():
            self.sparse.update(lengths[long].tolist())
            lengths = lengths[~long]
        counts = np.bincount(lengths)
        if len(counts) > len(self.dense):
            counts[: len(self.dense)] += self.dense
            self.dense = counts
        else:
            self.dense[: len(counts)] += counts

    def values_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct lengths (ascending) and how many samples have each."""
        dense_values = np.flatnonzero(self.dense)
        long_values = np.array(sorted(self.sparse), dtype=np.int64)
        long_counts = np.array([self.sparse[v] for v in long_values.tolist()], dtype=np.int64)
        return (np.concatenate([dense_values, long_values]).astype(np.int64),
                np.concatenate([self.dense[dense_values], long_counts]))

    @property
    def count(self) -> int:
        """Number of lengths counted."""
        return int(self.dense.sum()) + sum(self.sparse.values())

    def percentile(self, q: float) -> float:
        """``numpy.percentile(lengths, q)`` (linear interpolation), exactly."""
        values, counts = self.values_counts()
        if not len(values):
            raise ValueError("percentile of an empty LengthHistogram. Expected at least one "
                             "length; add some first.")
        position = (counts.sum() - 1) * q / 100
        ends = np.cumsum(counts)
        lower = values[np.searchsorted(ends, math.floor(position), side="right")]
        upper = values[np.searchsorted(ends, math.ceil(position), side="right")]
        return float(lower + (upper - lower) * (position - math.floor(position)))

    def median(self) -> float:
        """The median (mean of the two middle lengths for an even count), exactly."""
        return self.percentile(50)

    def stats(self, unit: str, bins: int = HISTOGRAM_BINS) -> LengthStats:
        """Summary of the distribution (see :class:`LengthStats`)."""
        values, counts = self.values_counts()
        lo, hi = int(values[0]), int(values[-1])
        hist, edges = np.histogram(values, bins=bins, range=(lo, hi), weights=counts)
        return LengthStats(
            unit=unit, min=lo, max=hi,
            mean=float((values * counts).sum() / counts.sum()), median=self.median(),
            percentiles={str(q): self.percentile(q) for q in PERCENTILES},
            bin_edges=[float(e) for e in edges], bin_counts=[int(c) for c in hist])


# ------------------------------------------------------------ n-grams
def _token_ranks(words: list[str]) -> np.ndarray:
    """Position of every token in code-point (``str``) order."""
    order = sorted(range(len(words)), key=words.__getitem__)
    ranks = np.empty(len(words), dtype=np.int64)
    ranks[order] = np.arange(len(words))
    return ranks


def _string_order(space: KeySpace, ranks: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Token ranks of each key, left-aligned and padded with -1.

    Sorting these rows lexicographically sorts the n-grams by their string
    (tokens joined with a space): a space sorts before every ``\\w``
    character, so a shorter n-gram that is a prefix comes first.
    """
    slots = space.slots(keys)
    lengths = (slots >= 0).sum(axis=1)
    out = np.full(slots.shape, -1, dtype=np.int64)
    width = slots.shape[1]
    for n in np.unique(lengths).tolist():
        rows = lengths == n
        out[rows, :n] = ranks[slots[rows, width - n:]]
    return out


def _most_frequent(space: KeySpace, ranks: np.ndarray, keys: np.ndarray, totals: np.ndarray,
                   n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` keys of highest total, ties by n-gram string, in that order."""
    if len(keys) > n:
        cutoff = np.partition(totals, len(totals) - n)[len(totals) - n]
        keep = totals >= cutoff
        keys, totals = keys[keep], totals[keep]
    columns = _string_order(space, ranks, keys)
    order = np.lexsort((*columns.T[::-1], -totals))[:n]
    return keys[order], totals[order]


@dataclass
class _Tally:
    """The running counts of one pass."""

    space: KeySpace
    spill: SpilledCounts | None
    labels: Counter[str] = field(default_factory=Counter)
    words: LengthHistogram = field(default_factory=LengthHistogram)
    chars: LengthHistogram = field(default_factory=LengthHistogram)
    table: TokenTable = field(default_factory=TokenTable)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, rows: Rows) -> None:
        """Count one chunk of rows."""
        texts = rows.texts
        self.labels.update(rows.labels)
        self.words.add(np.fromiter(map(len, map(str.split, texts)), np.int64, len(texts)))
        self.chars.add(np.fromiter(map(len, texts), np.int64, len(texts)))
        if self.spill is None:
            return
        tokens = word_tokens(texts)
        ids = self.table.add(tokens.dictionary or [])[tokens.ids]
        keys, _ = self.space.keys(tokens, ids)
        distinct, counts = np.unique(keys, return_counts=True)
        self.spill.add(distinct, counts.astype(np.int64))

    def skip(self, bad: BadRow) -> None:
        """Count a skipped row by reason."""
        self.skipped[bad.category] += 1

    def top_ngrams(self, n: int, memory_budget: int) -> tuple[list[tuple[str, int]], int]:
        """The ``n`` most frequent n-grams with their totals, and the number of distinct ones."""
        if self.spill is None:
            return [], 0
        ranks = _token_ranks(self.table.words)
        best = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        distinct = 0
        for keys, totals in self.spill.reduce(memory_budget):
            distinct += len(keys)
            best = _most_frequent(self.space, ranks, np.concatenate([best[0], keys]),
                                  np.concatenate([best[1], totals]), n)
        words = self.table.words
        texts = [" ".join(words[t] for t in ids) for ids in self.space.decode(best[0])]
        return list(zip(texts, best[1].tolist(), strict=True)), distinct


# ------------------------------------------------------------ the report
@dataclass(frozen=True)
class ExploreReport:
    """What :func:`explore` found.  ``to_dict()`` is the JSON form, ``format()`` the text.

    ``ratio`` is ``inf`` when the median is 0 words; ``rows_per_s`` counts
    accepted rows over ``elapsed_s``, the wall time of the whole pass.
    """

    inputs: tuple[str, ...]
    n_samples: int
    class_counts: dict[str, int]
    median_words: float
    ratio: float
    recommendation: str
    ngram_range: tuple[int, int]
    top_ngrams: list[tuple[str, int]]
    distinct_tokens: int
    distinct_ngrams: int
    words: LengthStats
    characters: LengthStats
    skipped: dict[str, int]
    elapsed_s: float

    @property
    def n_classes(self) -> int:
        """Number of distinct labels."""
        return len(self.class_counts)

    @property
    def rows_per_s(self) -> float:
        """Accepted rows per second of wall time."""
        return self.n_samples / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (an infinite ratio becomes ``None``)."""
        data = asdict(self)
        data.update(n_classes=self.n_classes, rows_per_s=round(self.rows_per_s, 1),
                    inputs=list(self.inputs), ngram_range=list(self.ngram_range),
                    ratio=self.ratio if math.isfinite(self.ratio) else None,
                    ratio_threshold=RATIO_THRESHOLD,
                    top_ngrams=[{"ngram": g, "count": c} for g, c in self.top_ngrams])
        return data

    def format(self, max_classes: int = 10) -> str:
        """A readable report of about one screen."""
        w, c = self.words, self.characters
        lines = [f"ooc explore: {self.n_samples:,} samples from {len(self.inputs)} input(s) in "
                 f"{self.elapsed_s:.1f} s ({self.rows_per_s:,.0f} rows/s)",
                 f"  classes          {self.n_classes}"]
        for label, count in list(self.class_counts.items())[:max_classes]:
            lines.append(f"    {label:<20} {count:>12,}  {count / self.n_samples:6.1%}")
        if self.n_classes > max_classes:
            lines.append(f"    ... {self.n_classes - max_classes} more")
        comparison = "<" if self.ratio < RATIO_THRESHOLD else ">="
        lines += [f"  median words     {_num(self.median_words)} per sample",
                  f"  samples/words    {self.ratio:,.1f} ({comparison} {RATIO_THRESHOLD})",
                  f"  recommendation   {self.recommendation}",
                  f"  words/sample     {_spread(w)}",
                  f"  chars/sample     {_spread(c)}",
                  f"  vocabulary       {self.distinct_tokens:,} tokens, {self.distinct_ngrams:,} "
                  f"distinct {self.ngram_range[0]}-{self.ngram_range[1]}-grams"]
        if self.top_ngrams:
            lines.append(f"  top {len(self.top_ngrams)} n-grams")
            width = max(len(g) for g, _ in self.top_ngrams)
            lines += [f"    {g:<{width}}  {n:>12,}" for g, n in self.top_ngrams]
        if self.skipped:
            reasons = ", ".join(f"{r}: {n:,}" for r, n in self.skipped.items())
            lines.append(f"  skipped          {sum(self.skipped.values()):,} bad rows ({reasons})")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _spread(s: LengthStats) -> str:
    p = s.percentiles
    middle = " ".join(f"p{q} {_num(p[str(q)])}" for q in PERCENTILES)
    return f"min {s.min:,}  {middle}  max {s.max:,}  mean {s.mean:,.1f}"


# ------------------------------------------------------------ the pass
def _check_args(top: int, ngram_range: tuple[int, int], memory_budget: int) -> KeySpace:
    """Validate the arguments of :func:`explore`; return the n-gram key space."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"top must be an int >= 0 (0: no n-gram counts). Got {top!r} instead.")
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) \
            or memory_budget < (16 << 20):
        got = human_bytes(memory_budget) if isinstance(memory_budget, int) else repr(memory_budget)
        raise ValueError(f"memory_budget must be at least 16 MiB. Got {got} instead.")
    lo, hi = ngram_range
    if not 1 <= lo <= hi <= 4:
        raise ValueError(f"ngram_range must be (min, max) with 1 <= min <= max <= 4. Got "
                         f"{tuple(ngram_range)!r} instead.")
    return KeySpace((int(lo), int(hi)), min(WORD_BITS, 64 // hi))


def explore(spec: SourceSpec, top: int = 20, ngram_range: tuple[int, int] = (1, 2),
            memory_budget: int = DEFAULT_MEMORY_BUDGET, progress: bool = True, *,
            chunk_rows: int = 8192, work_dir: str | Path | None = None) -> ExploreReport:
    """Read ``spec``'s rows once and describe the corpus (see the module docstring).

    Parameters
    ----------
    spec
        The inputs, columns and bad-row policy; skipped rows are counted by reason.
    top
        How many of the most frequent n-grams to report; 0 skips tokenizing.
    ngram_range
        ``(min, max)`` n-gram orders counted, as scikit-learn's ``ngram_range``.
    memory_budget
        Bytes the n-gram count merge may use (at least 16 MiB).
    progress
        Show a tqdm progress bar (rows, rows/s) on stderr.
    chunk_rows
        Rows read and tokenized at a time.
    work_dir
        Where the temporary n-gram count files go (default: the system's temp dir).

    Raises
    ------
    CorpusError
        When no row could be read.
    """
    space = _check_args(top, tuple(ngram_range), memory_budget)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ooc-explore-", dir=work_dir) as tmp:
        tally = _Tally(space, SpilledCounts(tmp, partition_bits=8) if top else None)
        with progress_bar("explore", enabled=progress) as bar:
            for rows in read_rows(spec, chunk_rows, on_skip=tally.skip):
                tally.add(rows)
                bar.update(len(rows))
        if not tally.labels:
            raise CorpusError(f"no usable rows in {', '.join(spec.paths)} "
                              f"({sum(tally.skipped.values())} skipped). Expected at least "
                              "one row with a text and a label.")
        ngrams, distinct = tally.top_ngrams(top, memory_budget)
    return _report(spec, tally, space, ngrams, distinct, time.perf_counter() - start)


def _report(spec: SourceSpec, tally: _Tally, space: KeySpace, ngrams: list[tuple[str, int]],
            distinct: int, elapsed: float) -> ExploreReport:
    n = tally.words.count
    median = tally.words.median()
    ratio = n / median if median > 0 else float("inf")
    check_forms(tally.labels, strict=False, where=", ".join(spec.paths))
    return ExploreReport(
        inputs=spec.paths, n_samples=n,
        class_counts={k: tally.labels[k] for k in sort_classes(tally.labels)},
        median_words=median, ratio=ratio, recommendation=recommend(ratio),
        ngram_range=space.ngram_range, top_ngrams=ngrams,
        distinct_tokens=len(tally.table), distinct_ngrams=distinct,
        words=tally.words.stats("words"), characters=tally.chars.stats("characters"),
        skipped=dict(tally.skipped.most_common()), elapsed_s=elapsed)


# ------------------------------------------------------------ plots
def _figure_class() -> Any:
    """matplotlib's ``Figure`` with an Agg canvas; a clear error when it is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise MissingDependencyError(
            "plots need matplotlib, which is not installed. Install it with "
            "`pip install 'ooc[plots]'` (or `pip install matplotlib`).") from err

    def new_figure(**kwargs: Any) -> Any:
        figure = Figure(**kwargs)
        FigureCanvasAgg(figure)
        return figure

    return new_figure


def _plot_classes(ax: Any, report: ExploreReport) -> None:
    names = list(report.class_counts)
    ax.bar(range(len(names)), list(report.class_counts.values()))
    many = len(names) > 5
    ax.set_xticks(range(len(names)), names, rotation=45 if many else 0,
                  ha="right" if many else "center")
    ax.set(xlabel="Class", ylabel="Number of samples", title="Class distribution")


def _plot_lengths(ax: Any, report: ExploreReport) -> None:
    edges = np.asarray(report.words.bin_edges)
    ax.bar(edges[:-1], report.words.bin_counts, width=np.diff(edges), align="edge")
    ax.axvline(report.median_words, color="black", linestyle="--",
               label=f"median {_num(report.median_words)}")
    ax.legend()
    ax.set(xlabel="Length of a sample (words)", ylabel="Number of samples",
           title="Sample length distribution")


def _plot_ngrams(ax: Any, report: ExploreReport) -> None:
    names = [g for g, _ in report.top_ngrams]
    ax.bar(range(len(names)), [c for _, c in report.top_ngrams])
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    lo, hi = report.ngram_range
    ax.set(xlabel="N-grams", ylabel="Frequencies",
           title=f"Frequency distribution of the top {len(names)} {lo}-{hi}-grams")


def plot_report(report: ExploreReport, directory: str | Path) -> list[Path]:
    """Write the guide's three plots of ``report`` as PNG files in ``directory``.

    Returns the paths of :data:`PLOT_FILES` (class distribution, sample
    length histogram in words, top n-grams).  Raises
    :class:`MissingDependencyError` when matplotlib is not installed.
    """
    new_figure = _figure_class()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in zip(PLOT_FILES, (_plot_classes, _plot_lengths, _plot_ngrams),
                          strict=True):
        figure = new_figure(figsize=(10, 6))
        draw(figure.add_subplot(), report)
        figure.tight_layout()
        figure.savefig(directory / name, dpi=100)
        paths.append(directory / name)
    return paths


# ------------------------------------------------------------ command line
def command(args: argparse.Namespace) -> int:
    """``ooc explore``: explore, print the report, write JSON and plots as asked."""
    if args.plots is not None:
        _figure_class()  # fail before the pass, not after it
    spec = SourceSpec(paths=tuple(args.input), text_columns=tuple(args.text_columns or ()),
                      label_column=args.label_column, header=not args.no_header,
                      delimiter=args.delimiter, on_bad_row=args.on_bad_row,
                      encoding=args.encoding, decode_errors=args.decode_errors,
                      limit=args.limit)
    report = explore(spec, top=args.top, ngram_range=tuple(args.ngram_range),
                     memory_budget=args.memory_budget, progress=not args.quiet)
    print(report.format())
    if args.json is not None:
        report.write_json(args.json)
        print(f"  json             {args.json}")
    if args.plots is not None:
        paths = plot_report(report, args.plots)
        print(f"  plots            {', '.join(str(p) for p in paths)}")
    return 0
