"""Class counts of contiguous batches: a dataset's stored order vs its source order.

Shows what the write-time shuffle of ``ooc preprocess`` does to a class-sorted
source: the guide's ``x[start:end]`` batches of the source are one class each,
the dataset's contiguous batches (what ``split.batches(b, shuffle=False)``
hands to Keras) carry the overall class mix.  The source order is rebuilt
from ``row_ids``, so no input file is read::

    python tools/class_mix.py data/scale/amazon_3m_sorted.h5 --batch 128 --show 5

Prints a Markdown table of the first ``--show`` batches, then, over every full
batch of the split: the share of batches holding every class, the largest
class fraction in any batch, and the mean absolute deviation of batch class
fractions from the overall ones beside its expectation for uniformly random
batches (binomial).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

import ooc
from ooc.reader import Split


@dataclass(frozen=True)
class ClassMix:
    """Per-batch class counts, ``(batches, classes)``, of one order of a split."""

    counts: np.ndarray

    @property
    def fractions(self) -> np.ndarray:
        return self.counts / self.counts.sum(axis=1, keepdims=True)

    def every_class(self) -> float:
        """Share of batches that hold every class."""
        return float(np.mean((self.counts > 0).all(axis=1)))

    def deviation(self, overall: np.ndarray) -> float:
        """Mean absolute deviation of batch class fractions from ``overall``."""
        return float(np.abs(self.fractions - overall).mean())


def batch_counts(y: np.ndarray, batch: int, n_classes: int) -> ClassMix:
    """Class counts of every full batch of ``y`` taken in order."""
    full = len(y) // batch * batch
    cells = np.repeat(np.arange(full // batch), batch) * n_classes + y[:full]
    return ClassMix(np.bincount(cells, minlength=full // batch * n_classes)
                    .reshape(-1, n_classes))


def random_deviation(overall: np.ndarray, batch: int) -> float:
    """Expected :meth:`ClassMix.deviation` of uniformly random batches (normal approximation)."""
    return float(np.mean(np.sqrt(2 / np.pi * overall * (1 - overall) / batch)))


def class_mix(split: Split, batch: int,
              n_classes: int) -> tuple[ClassMix, ClassMix, np.ndarray]:
    """``(source order, stored order, overall fractions)`` of a split's labels."""
    y = np.asarray(split.y[:], dtype=np.int64)
    source = y[np.argsort(split.row_ids[:], kind="stable")]
    overall = np.bincount(y, minlength=n_classes) / max(len(y), 1)
    return batch_counts(source, batch, n_classes), batch_counts(y, batch, n_classes), overall


def main(argv: list[str] | None = None) -> int:
    """Print the class mix of a dataset's batches; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("--split", default="train")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--show", type=int, default=5, help="batches listed one by one")
    args = p.parse_args(argv)
    with ooc.open(args.dataset) as ds:
        n = len(ds.classes)
        source, stored, overall = class_mix(ds.splits[args.split], args.batch, n)
    print(f"classes {ds.classes}; batches of {args.batch} rows of {args.split}\n")
    print("| batch | source order: rows per class | dataset order: rows per class |")
    print("|---|---|---|")
    for i in range(min(args.show, len(stored.counts))):
        print(f"| {i} | {source.counts[i].tolist()} | {stored.counts[i].tolist()} |")
    print(f"\noverall class fractions {np.round(overall, 4).tolist()}, "
          f"{len(stored.counts):,} full batches\n")
    print("| order | batches holding every class | largest class fraction in a batch "
          "| mean abs. deviation from overall |")
    print("|---|---|---|---|")
    for name, mix in (("source", source), ("dataset", stored)):
        print(f"| {name} | {mix.every_class():.4f} | {mix.fractions.max():.3f} "
              f"| {mix.deviation(overall):.4f} |")
    print(f"| uniformly random batches (expected) | | | "
          f"{random_deviation(overall, args.batch):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
