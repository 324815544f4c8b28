"""Time of the n-gram count spill (``SpilledCounts``) on the counts of a real run.

``capture`` runs ``ooc preprocess`` on a corpus (1 worker) and saves the
keys and counts of every ``SpilledCounts.add`` of the first pass;
``replay`` adds them again to a fresh spill and reduces it as the
vocabulary step does, printing the seconds of the adds and of the reduce,
the files written, and a checksum of the result.  Replay with each
version of ooc (``PYTHONPATH``) in turns to compare them.

Usage::

    python tools/bench_spill.py capture data/bench_pre/corpus_100000.csv /tmp/adds
    python tools/bench_spill.py replay /tmp/adds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ooc.text import counts

PREPROCESS_BITS = 8  # the partition bits of ``ooc preprocess``'s spill


def capture(corpus: str, directory: Path) -> None:
    """Run ``ooc preprocess`` on ``corpus``, saving every add of its spill."""
    from ooc.cli import main

    directory.mkdir(parents=True, exist_ok=True)
    add, n = counts.SpilledCounts.add, [0]

    def saving(self: counts.SpilledCounts, keys: np.ndarray, values: np.ndarray) -> None:
        if self.bits == PREPROCESS_BITS:
            np.savez(directory / f"add-{n[0]:05d}.npz", keys=keys, counts=values)
            n[0] += 1
        add(self, keys, values)

    counts.SpilledCounts.add = saving
    with tempfile.TemporaryDirectory() as tmp:
        main(["preprocess", corpus, "--out", str(Path(tmp) / "out.h5"), "--quiet",
              "--workers", "1"])
    print(f"{n[0]} adds saved in {directory}")


def replay(directory: Path, memory_budget: int, min_count: int) -> None:
    """Add the saved counts to a fresh spill, reduce it, print the times."""
    adds = [np.load(path) for path in sorted(directory.glob("add-*.npz"))]
    adds = [(a["keys"], a["counts"]) for a in adds]
    with tempfile.TemporaryDirectory() as tmp:
        spill = counts.SpilledCounts(tmp, partition_bits=PREPROCESS_BITS)
        start = time.perf_counter()
        for keys, values in adds:
            spill.add(keys, values)
        added = time.perf_counter()
        n_keys = total = 0
        for _, keys, totals in spill.reduce_partitions(memory_budget, min_count):
            n_keys, total = n_keys + len(keys), total + int(totals.sum())
        reduced = time.perf_counter()
        print(f"{counts.__file__}: add {added - start:.3f} s, reduce {reduced - added:.3f} s, "
              f"{len(os.listdir(tmp))} files, {n_keys} keys summing to {total}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cap = commands.add_parser("capture")
    cap.add_argument("corpus")
    cap.add_argument("directory", type=Path)
    rep = commands.add_parser("replay")
    rep.add_argument("directory", type=Path)
    rep.add_argument("--memory-budget", type=int, default=512 << 20,
                     help="bytes (default: half of ooc preprocess's, as its vocabulary step)")
    rep.add_argument("--min-count", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "capture":
        capture(args.corpus, args.directory)
    else:
        replay(args.directory, args.memory_budget, args.min_count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
