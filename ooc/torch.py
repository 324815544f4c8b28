"""PyTorch: a split's batches as datasets for ``torch.utils.data.DataLoader``.

``pip install 'ooc[torch]'``; torch is imported only here.  Both datasets
yield whole batches, so give them to ``DataLoader(dataset, batch_size=None)``:

* :class:`MapBatches`: a map-style dataset of batches (``len`` is the number
  of batches, item ``i`` batch ``i`` of the current epoch's order), for
  any sampler, e.g. ``DistributedSampler`` for DDP.
* :class:`IterableBatches`: an ``IterableDataset`` that splits itself across
  ``DataLoader`` workers and DDP ranks (``torch.distributed``): each reads
  one contiguous shard of the rows (:meth:`ooc.reader.Split.shard`), so
  every row is read once per epoch.

Batches are ``(x, y)`` tensors, writable, taken over from the arrays ooc
reads (one copy out of the file, none after; a ``DataLoader`` worker's are
copied once more into shared memory by the loader, as any worker's
tensors are.  Handing workers the file's read-only views instead saved
that copy, 0.71x -> 0.84x of in-memory reads, but a ``collate_fn`` writing
a batch in place would then crash the worker); sparse ``x`` comes densified
(``sparse="dense"``, the default) or as a ``torch.sparse_csr_tensor``
(``sparse="csr"``).  Call ``set_epoch(epoch)`` before each epoch for a new
shuffle, as with ``DistributedSampler`` (with ``persistent_workers=True``
the workers keep the epoch they started with).  ``IterableBatches`` has a
``state_dict()`` / ``load_state_dict()`` that torchdata's
``StatefulDataLoader`` saves and restores per worker, to stop and resume
mid-epoch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .batching import BatchOptions, BatchReader, copied_options
from .reader import Split


def to_tensors(x: Any, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch as torch tensors (sharing the arrays' memory)."""
    if scipy.sparse.issparse(x):
        xt = torch.sparse_csr_tensor(torch.from_numpy(np.asarray(x.indptr, np.int64)),
                                     torch.from_numpy(np.asarray(x.indices, np.int64)),
                                     torch.from_numpy(np.asarray(x.data)), size=x.shape,
                                     check_invariants=False)  # canonical when written
    else:
        xt = torch.from_numpy(x)
    return xt, torch.from_numpy(y)


class MapBatches(Dataset):  # type: ignore[type-arg]
    """Batch ``i`` of ``split`` (of the epoch set by :meth:`set_epoch`) as ``(x, y)``.

    ``options`` are those of :class:`~ooc.batching.BatchOptions` (``shuffle``
    and ``seed`` order the batches and, with ``shuffle_window``, the rows in
    them; ``sparse`` is ``"dense"`` or ``"csr"``).
    """

    def __init__(self, split: Split, batch_size: int | BatchOptions, **options: Any) -> None:
        self.reader = BatchReader(split, copied_options(batch_size, "MapBatches", options))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the items follow."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self.reader):
            raise IndexError(f"batch {i} of {len(self.reader)}")
        return to_tensors(*self.reader.read(i, self.epoch))


class IterableBatches(IterableDataset):  # type: ignore[type-arg]
    """The batches of this process's shard of ``split``, one epoch per iteration.

    The shard is this ``DataLoader`` worker's of this DDP rank's:
    ``split.shard(rank, world_size).shard(worker, num_workers)``.  Shards
    differ by at most one row, so one rank may take a batch more than
    another; with ``equal=True`` every rank gets ``len(split) // world_size``
    rows (the rest left out), so that DDP ranks take the same number of
    steps.  ``options`` as for :class:`MapBatches`.
    """

    def __init__(self, split: Split, batch_size: int | BatchOptions, *, equal: bool = False,
                 **options: Any) -> None:
        self.split, self.equal = split, equal
        self.options = copied_options(batch_size, "IterableBatches", options)
        if self.options.seed is None:  # every rank and worker must draw the same orders
            raise ValueError("IterableBatches needs seed= (the same in every process).")
        self.epoch = 0
        self.position = 0  # batches of this process's shard handed out this epoch
        self._resume_at = 0  # where the next iteration starts (load_state_dict), once

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next iteration follows."""
        self.epoch, self._resume_at = int(epoch), 0

    def state_dict(self) -> dict[str, Any]:
        """This process's place: the epoch, the next batch of its shard, and what fixes the
        order (:meth:`ooc.batching.BatchReader.state`).  torchdata's
        ``StatefulDataLoader`` keeps each worker's, so a loader stopped mid-epoch
        resumes with exactly the batches to come."""
        return BatchReader(self.shard(), self.options).state(self.epoch, self.position)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state_dict` (of the same split, options and process)."""
        self.epoch, self._resume_at = BatchReader(self.shard(), self.options).check_state(state)
        self.position = self._resume_at

    def shard(self) -> Split:
        """The rows this process (rank and worker) reads."""
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        info = get_worker_info()
        part = self.split.shard(rank, world, equal=self.equal)
        return part if info is None else part.shard(info.id, info.num_workers)

    def __iter__(self) -> Any:
        reader = BatchReader(self.shard(), self.options)
        self.position, self._resume_at = self._resume_at, 0  # later iterations: whole epochs
        while self.position < len(reader):
            batch = reader.read(self.position, self.epoch)
            self.position += 1
            yield to_tensors(*batch)
