"""Grain (JAX's data loader): a split's batches as a random-access data source.

``pip install 'ooc[grain]'``; grain is imported only by the caller, never here.
A row a record makes a slow source (about 13k rows/s measured in issue 18,
against 1.1M rows/s for blocks of rows), so each record of
:class:`BatchSource` is one batch: a contiguous block of rows, read at once.
Grain then shuffles, shards and prefetches batches::

    source = ooc.grain.BatchSource(ooc.open("data/reviews.h5").train, 512)
    dataset = grain.MapDataset.source(source).shuffle(seed=1)      # model.fit(dataset)
    loader = grain.DataLoader(data_source=source, sampler=grain.samplers.IndexSampler(
        len(source), shard_options=grain.sharding.ShardByJaxProcess(), shuffle=True,
        seed=1, num_epochs=1), worker_count=2)                     # each process its share

Every record is ``(x, y)`` NumPy arrays, writable (the reader's copies);
sparse ``x`` densified (the default) or ``scipy.sparse`` CSR with
``sparse="csr"``.  Within a batch the rows keep their stored order, which
``ooc preprocess`` and ``ooc.create(shuffle=True)`` make a uniform random one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .batching import BatchOptions, BatchReader, copied_options
from .reader import Split


class BatchSource:
    """Record ``i`` is batch ``i`` of ``split`` in stored order: ``(x, y)``.

    ``options`` are those of :class:`~ooc.batching.BatchOptions` except
    ``shuffle`` and ``shuffle_window``: Grain's samplers and ``shuffle``
    permute the records (batches) themselves.
    """

    def __init__(self, split: Split, batch_size: int | BatchOptions, **options: Any) -> None:
        opts = copied_options(batch_size, "BatchSource", options)
        if opts.shuffle or opts.shuffle_window > 1:
            raise ValueError("BatchSource takes no shuffle or shuffle_window: Grain shuffles "
                             "the batches.")
        self._reader = BatchReader(split, opts)
        self._name = f"{split.name}, {len(split)} rows, batches of {opts.batch_size}"

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, record_key: int) -> tuple[Any, np.ndarray]:
        i = int(record_key)
        if not 0 <= i < len(self._reader):
            raise IndexError(f"batch {i} of {len(self._reader)}")
        return self._reader.read(i)

    def __repr__(self) -> str:  # Grain's checkpoints name the source by it
        return f"ooc.grain.BatchSource({self._name})"
