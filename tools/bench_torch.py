"""PyTorch ``DataLoader`` over ooc against the same data held in memory.

Each reader gets a whole epoch in its turn (readers rotated every round,
one warm-up epoch each, medians of ``--repeats`` rounds), through
``DataLoader(..., num_workers=--workers)``:

* ``tensordataset``: ``TensorDataset(x, y)`` with ``batch_size=b`` (rows
  indexed one by one and stacked: what most PyTorch code does);
* ``memory-batches``: the same tensors sliced a batch at a time
  (``batch_size=None``), the fastest in-memory way;
* ``ooc-map``: :class:`ooc.torch.MapBatches`; ``ooc-iterable``:
  :class:`ooc.torch.IterableBatches` (each worker its shard).

Two measures: batches per second with every batch consumed (``x.sum()``),
and one training epoch of an MLP (the guide's: 2 x 64 units, dropout 0.2,
Adam) on each.  Usage::

    python tools/bench_torch.py --dir data/bench_torch --rows 200000 --cols 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from bench_data import make_dense as make  # tools/ is the script's folder
from torch.utils.data import DataLoader, Dataset, TensorDataset

import ooc
import ooc.torch as ooc_torch


class _Slices(Dataset):  # type: ignore[type-arg]
    def __init__(self, x: torch.Tensor, y: torch.Tensor, b: int) -> None:
        self.x, self.y, self.b = x, y, b

    def __len__(self) -> int:
        return -(-len(self.x) // self.b)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i * self.b:(i + 1) * self.b], self.y[i * self.b:(i + 1) * self.b]




def loaders(path: Path, b: int, workers: int) -> dict[str, DataLoader]:
    split = ooc.open(path).train
    x, y = torch.from_numpy(np.array(split.x[:])), torch.from_numpy(np.array(split.y[:]))
    common = {"num_workers": workers, "persistent_workers": workers > 0}
    return {
        "tensordataset": DataLoader(TensorDataset(x, y), batch_size=b, **common),
        "memory-batches": DataLoader(_Slices(x, y, b), batch_size=None, **common),
        "ooc-map": DataLoader(ooc_torch.MapBatches(split, b), batch_size=None, **common),
        "ooc-iterable": DataLoader(ooc_torch.IterableBatches(split, b, seed=0),
                                   batch_size=None, **common),
    }


def read_epoch(loader: DataLoader) -> float:
    start = time.perf_counter()
    for x, _ in loader:
        x.sum()
    return time.perf_counter() - start


def train_epoch(loader: DataLoader, cols: int, classes: int) -> float:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(cols, 64),
                                torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(64, classes))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    start = time.perf_counter()
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", type=Path, default=Path("data/bench_torch"))
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--cols", type=int, default=500)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the loader's workers have the other cores
    path = make(args.dir / f"dense_{args.rows}x{args.cols}", args.rows, args.cols, args.classes)
    batches = -(-args.rows // args.batch)
    for name, measure in (("read", read_epoch),
                          ("train", lambda ld: train_epoch(ld, args.cols, args.classes))):
        found = loaders(path, args.batch, args.workers)
        times: dict[str, list[float]] = {k: [] for k in found}
        for loader in found.values():
            measure(loader)  # warm-up: page cache, workers started
        for r in range(args.repeats):
            names = list(found)[r % len(found):] + list(found)[:r % len(found)]
            for k in names:
                times[k].append(measure(found[k]))
        ref = statistics.median(times["memory-batches"])
        ref_td = statistics.median(times["tensordataset"])
        print(f"\n{name}: {args.rows:,} x {args.cols} float32, batches of {args.batch}, "
              f"{args.workers} loader workers, medians of {args.repeats} epochs")
        print("| reader | s/epoch | batches/s | vs memory-batches | vs tensordataset |")
        print("|---|---|---|---|---|")
        for k, ts in times.items():
            t = statistics.median(ts)
            print(f"| {k} | {t:.3f} | {batches / t:,.0f} | {ref / t:.2f}x | {ref_td / t:.2f}x |")


if __name__ == "__main__":
    main()
