"""Keras adapter: a ``keras.utils.PyDataset`` over a split's batches.

Imports Keras; nothing else in ooc's read path does.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import Any

import numpy as np
import scipy.sparse

from ._buffers import ALIGN_BYTES
from ._tensorflow import import_keras, import_tensorflow
from .batching import BatchReader, coo_indices

keras = import_keras()


def csr_to_sparse_tensor(x: scipy.sparse.csr_matrix) -> Any:
    """Convert a canonical CSR batch to a ``tf.SparseTensor`` (row-major order)."""
    tf = import_tensorflow()

    return tf.SparseTensor(_shared_tensor(coo_indices(x)), _shared_tensor(x.data),
                           dense_shape=_shape_tensor(x.shape))


@functools.lru_cache(maxsize=8)
def _shape_tensor(shape: tuple[int, int]) -> Any:
    """``shape`` as an int64 tensor, made once (a conversion costs ~0.3 ms inside fit)."""
    tf = import_tensorflow()

    return tf.constant(shape, dtype=tf.int64)


def _shared_tensor(array: np.ndarray) -> Any:
    """A tensor over ``array``'s memory where it starts on a 64-byte boundary.

    ``tf.convert_to_tensor`` copies every NumPy array; DLPack hands
    TensorFlow the memory itself, and the tensor keeps the array (and so its
    pooled buffer, see :mod:`ooc._buffers`) alive.  Inside ``fit``, making a
    ``tf.SparseTensor`` of a 128-row batch took 1.8 ms of CPU with the
    copies and about 1.1 ms without.  TensorFlow's kernels expect aligned
    data, and DLPack cannot mark memory read-only, so anything else is
    converted (copied) as before.
    """
    tf = import_tensorflow()

    if array.__array_interface__["data"][0] % ALIGN_BYTES or not array.flags.writeable:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def _from_reset(frame: Any) -> bool:
    """Whether Keras' ``EpochIterator.reset`` (fit's start, not an epoch's end) made
    this call; Keras tells a PyDataset no more."""
    for _ in range(3):  # reset -> the adapter's on_epoch_end -> here
        if frame is None:
            return False
        if frame.f_code.co_name == "reset" and \
                frame.f_globals.get("__name__", "").startswith("keras."):
            return True
        frame = frame.f_back
    return False


class KerasBatches(keras.utils.PyDataset):
    """Batches of one split for ``model.fit``; ``len`` is the number of batches.

    ``__getitem__(i)`` reads batch ``i`` of the current epoch in one
    contiguous read; ``on_epoch_end`` moves to the next epoch's shuffle.
    Works with ``workers > 1`` in threads or processes: each process opens
    its own file handles.
    """

    def __init__(self, reader: BatchReader, *, epoch: int = 0, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self.reader = reader
        # Keras' TensorFlow backend takes sparse batches only as tf.SparseTensor;
        # JAX's converts scipy CSR batches itself, torch's takes none
        self.sparse_tensor = reader.sparse_tensors or (
            reader.split.is_sparse and reader.options.sparse == "csr"
            and keras.backend.backend() == "tensorflow")
        if reader.split.is_sparse and reader.options.sparse == "csr" and \
                keras.backend.backend() == "torch":
            raise ValueError("Keras' torch backend takes no sparse batches (it fails on "
                             "scipy CSR inside fit): pass sparse='dense'.")
        if self.sparse_tensor:
            import_tensorflow()  # now, not at the first batch inside fit
        if self.sparse_tensor and use_multiprocessing:
            raise ValueError(f"sparse={reader.options.sparse!r} batches become tf.SparseTensor, "
                             "which cannot cross process boundaries; use threads "
                             "(use_multiprocessing=False) or sparse='dense'.")
        self.epoch = int(epoch)  # the order of the next epoch
        self._in_epoch = False
        self.skip = 0  # batches of this epoch trained on before a resume (:meth:`resume`)
        # Keras' own shuffle (fit's default) shows as an index far from the last one's
        # successor; seen in this process only (use_multiprocessing reads elsewhere)
        self._pid, self._last = os.getpid(), -1
        # how far threads may reorder requests (one reader asks in order)
        self._slack = 0 if workers <= 1 else workers + max_queue_size + 2
        self.reordered = False  # whether Keras asked for this epoch's batches out of order
        self._warned = False

    def __len__(self) -> int:
        return len(self.reader) - self.skip

    @property
    def batch_size(self) -> int:
        """Rows per batch (the last batch may be shorter)."""
        return self.reader.plan.batch_size

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        if index >= len(self):
            raise IndexError(f"batch index must be < {len(self)}; got {index}.")
        if self._in_epoch and os.getpid() == self._pid:
            self._note(index)
        x, y = self.reader.read(index + self.skip, self.epoch)
        if self.sparse_tensor:
            x = csr_to_sparse_tensor(x)
        return x, y

    def _note(self, index: int) -> None:
        last, self._last = self._last, index
        if not index or abs(index - last - 1) <= self._slack:  # in order, or a new pass
            return
        self.reordered = True
        if not self._warned:
            self._warned = True
            window = self.reader.plan.window
            warnings.warn(
                "model.fit(shuffle=True), Keras' default, reorders ooc's batches, which are "
                "shuffled already (shuffle=True, seed=...)"
                + (f": each batch then reads its whole window of {window} batches, {window}x "
                   "the reads" if window > 1 else "") +
                ", and the batch order depends on Python's global random state. Pass "
                "shuffle=False to fit.", stacklevel=3)

    def resume(self, state: dict[str, Any]) -> None:
        """Go on from ``state`` (:meth:`ooc.batching.BatchReader.state`): the epoch Keras
        runs next is ``state["epoch"]``'s order with only the batches from
        ``state["position"]`` on; those after it are whole.  Used by
        :class:`ooc.BackupAndRestore`.  A fit that raises inside that epoch leaves
        these batches shortened: make them again for the next fit."""
        self.epoch, self.skip = self.reader.check_state(state)

    def on_epoch_begin(self) -> None:
        """Mark an epoch as started (Keras calls this once per real epoch)."""
        self._in_epoch, self.reordered = True, False

    def on_epoch_end(self) -> None:
        """Advance to the next epoch's batch order.

        Keras also calls this when ``fit`` starts (its epoch iterator's
        ``reset``), after its torch and JAX backends took a first batch to
        build the model; that call is ignored, so ``fit`` trains on epochs 0,
        1, ... exactly like ``iter_batches`` and ``to_tf_dataset``.
        """
        if self._in_epoch and not _from_reset(sys._getframe(1)):
            self.epoch += 1
            self.skip = 0
        self._in_epoch = False
