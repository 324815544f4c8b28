"""Rows/s of ``ooc.grain.BatchSource`` (records are batches of 512) against a source of one
row a record, through ``grain.DataLoader`` (one process, shuffled record order).

Usage (the dataset of ``tools/bench_torch.py``)::

    python tools/bench_grain.py data/bench_torch/dense_200000x500
"""

from __future__ import annotations

import statistics
import sys
import time

import grain
import numpy as np

import ooc
import ooc.grain


class Rows:
    """A record per row: what a plain random-access source over a split does."""

    def __init__(self, split: ooc.Split) -> None:
        self.x, self.y = split.x, split.y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.x[int(i)], self.y[int(i)]


def rate(source: object, limit: int | None = None) -> float:
    """Rows per second over the source's records in a shuffled order (``limit`` records)."""
    sampler = grain.samplers.IndexSampler(len(source), shard_options=grain.sharding.NoSharding(),
                                          shuffle=True, seed=1, num_epochs=1)
    loader = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0)
    start, rows = time.perf_counter(), 0
    for k, (x, _) in enumerate(loader):
        rows += len(np.atleast_2d(x))
        if limit and k + 1 >= limit:
            break
    return rows / (time.perf_counter() - start)


def main() -> None:
    split = ooc.open(sys.argv[1]).train
    blocks = [rate(ooc.grain.BatchSource(split, 512)) for _ in range(3)]
    rows = [rate(Rows(split), limit=20_000) for _ in range(3)]
    print(f"blocks of 512: {statistics.median(blocks):,.0f} rows/s; a row a record: "
          f"{statistics.median(rows):,.0f} rows/s (medians of 3)")


if __name__ == "__main__":
    main()
