"""Peak memory and time of ``ooc.create(..., shuffle=True)`` at 1x and 8x the rows.

Writes a class-sorted source (``--classes`` classes, every row of class 0
first, then class 1, ...) chunk by chunk, with ``shuffle=True`` and, beside
it, ``shuffle=False``, each write in a fresh process; reports the median
over ``--repeats`` runs (taking turns) of the wall time and of the peak
resident memory (``VmHWM``) of the writing process, and the class mix of
the written dataset's batches: mean classes per batch of ``--batch`` rows in
stored order (what ``split.batches(b, shuffle=False)`` gives) and with
``shuffle=True, shuffle_window=16``.

Usage::

    python tools/bench_shuffle_write.py --dir data/bench_shuffle --rows 250000 --scale 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse

import ooc
from ooc._report import peak_rss_bytes
from ooc.store._atomic import remove

sys.path.insert(0, str(Path(__file__).resolve().parent))
from class_mix import batch_counts

CHUNK_ROWS = 10_000


def source_chunks(rows: int, cols: int, classes: int, sparse: bool):
    """The class-sorted source, ``(x, y)`` chunk by chunk; values derive from the row."""
    for start in range(0, rows, CHUNK_ROWS):
        ids = np.arange(start, min(rows, start + CHUNK_ROWS))
        y = ids * classes // rows
        x = (ids[:, None] * 7 + np.arange(cols)) % 1000
        if sparse:  # about one value in ten
            x = scipy.sparse.csr_matrix(np.where(x % 10 == 0, x, 0).astype(np.float32))
        yield x.astype(np.float32) if not sparse else x, y


def write_child(args: argparse.Namespace) -> None:
    """Child process: write one dataset; print time and peak RSS as JSON."""
    start = time.perf_counter()
    with ooc.create(args.path, args.format, shuffle=args.shuffle, seed=1,
                    memory_budget=args.memory_budget) as w:
        for x, y in source_chunks(args.rows, args.cols, args.classes, args.sparse):
            w.append("train", x, y)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss": peak_rss_bytes()}))


def classes_per_batch(path: Path, batch: int, classes: int) -> tuple[float, float]:
    """Mean classes per batch: stored order, and ``shuffle=True, shuffle_window=16``."""
    with ooc.open(path) as ds:
        stored = batch_counts(np.asarray(ds.train.y[:]), batch, classes)
        mixed = [len(np.unique(y)) for _, y in ds.train.iter_batches(
            batch, shuffle=True, seed=1, shuffle_window=16, drop_remainder=True)]
    return float((stored.counts > 0).sum(axis=1).mean()), float(np.mean(mixed))


def run_one(args: argparse.Namespace, rows: int, shuffle: bool) -> dict:
    path = args.dir / f"w_{rows}_{shuffle}{'.h5' if args.format == 'hdf5' else ''}"
    remove(path)
    cmd = [sys.executable, __file__, "--child", str(path), "--rows", str(rows),
           "--cols", str(args.cols), "--classes", str(args.classes), "--format", args.format,
           "--memory-budget", str(args.memory_budget)]
    cmd += ["--shuffle"] if shuffle else []
    cmd += ["--sparse"] if args.sparse else []
    result = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                       check=True).stdout)
    result["path"] = path
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=Path("data/bench_shuffle"))
    p.add_argument("--rows", type=int, default=250_000, help="rows at 1x")
    p.add_argument("--scale", type=int, default=8)
    p.add_argument("--cols", type=int, default=64)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--format", default="hdf5")
    p.add_argument("--sparse", action="store_true")
    p.add_argument("--memory-budget", type=int, default=256 << 20)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--shuffle", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.path = args.child
        write_child(args)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"{args.format}, {'CSR' if args.sparse else 'dense'} float32 x {args.cols} columns, "
          f"{args.classes} classes sorted, memory_budget {args.memory_budget >> 20} MiB, "
          f"median of {args.repeats}\n")
    print("| rows | shuffle | seconds | peak RSS | classes per batch of "
          f"{args.batch}: stored order | shuffle=True, window 16 |")
    print("|---|---|---|---|---|---|")
    for rows in (args.rows, args.rows * args.scale):
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.repeats):
            for shuffle in (True, False):
                runs[shuffle].append(run_one(args, rows, shuffle))
        for shuffle in (True, False):
            mix = classes_per_batch(runs[shuffle][-1]["path"], args.batch, args.classes)
            seconds = statistics.median(r["seconds"] for r in runs[shuffle])
            rss = statistics.median(r["peak_rss"] for r in runs[shuffle])
            print(f"| {rows:,} | {shuffle} | {seconds:.1f} | {rss / 2**20:.0f} MiB "
                  f"| {mix[0]:.2f} | {mix[1]:.2f} |")
            remove(runs[shuffle][-1]["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
