"""Which rows make up batch ``i`` of epoch ``e``, and reading them.

Batches are contiguous row ranges on disk, so each is one sequential read.
Shuffling never makes reads random:

* ``shuffle=True`` permutes the order of batches each epoch;
* ``shuffle_window=W`` (W >= 2) also mixes rows across windows of W
  consecutive on-disk batches: a window is read in one piece, its rows are
  permuted, and the W batches are cut from the permutation.

Every order is a pure function of ``(seed, epoch)``, so any worker thread or
process can compute batch ``i`` on its own, and runs are reproducible.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import scipy.sparse

from ._buffers import aligned_empty
from .errors import ClassSortedWarning

try:  # what csr_matrix.toarray runs, without its zeroing of the output
    from scipy.sparse._sparsetools import csr_todense as _csr_todense
except ImportError:  # pragma: no cover - scipy has had it since 0.14
    _csr_todense = None

if TYPE_CHECKING:
    from .reader import Split

SparseMode = Literal["dense", "csr", "tensor"]
SPARSE_MODES = ("dense", "csr", "tensor")


@dataclass(frozen=True)
class BatchOptions:
    """How a split is cut into batches: the options every way of reading batches takes.

    :meth:`~ooc.reader.Split.iter_batches`, :meth:`~ooc.reader.Split.batches`
    and :meth:`~ooc.reader.Split.to_tf_dataset` accept these as keyword
    arguments after ``batch_size`` (or a ``BatchOptions`` in its place).

    Attributes
    ----------
    batch_size
        Rows per batch; the last batch may be shorter.
    shuffle
        Visit the batches in a new seeded order every epoch (each batch is
        still one contiguous read).
    seed
        Seed of every shuffle; drawn at random when None.
    shuffle_window
        With ``shuffle``, also mix rows across windows of this many
        consecutive batches (one read per window).
    drop_remainder
        Leave out the last batch when it is short.
    sparse
        What sparse ``x`` becomes: ``"dense"`` (densified per batch),
        ``"csr"`` (``scipy.sparse.csr_matrix``, or ``tf.SparseTensor`` where
        only a tensor fits: a ``tf.data.Dataset``, Keras' TensorFlow backend)
        or ``"tensor"`` (``tf.SparseTensor``).  Dense ``x`` is the same in
        every mode.
    copy
        Hand out writable copies; otherwise dense batches are read-only
        views of the stored files where the layout allows.
    """

    batch_size: int
    shuffle: bool = False
    seed: int | None = None
    shuffle_window: int = 1
    drop_remainder: bool = False
    sparse: SparseMode = "dense"
    copy: bool = False

    def __post_init__(self) -> None:
        self.plan(0)  # checks batch_size and shuffle_window
        if self.sparse not in SPARSE_MODES:
            raise ValueError(f"sparse must be one of {', '.join(map(repr, SPARSE_MODES))}; "
                             f"got {self.sparse!r}.")

    @classmethod
    def of(cls, batch_size: int | BatchOptions, caller: str, **options: Any) -> BatchOptions:
        """``batch_size`` and keyword options (or a ``BatchOptions`` and overrides), checked."""
        names = [f.name for f in dataclasses.fields(cls)][1:]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"{caller}() got unexpected option(s) {', '.join(unknown)}; "
                            f"batch options are {', '.join(names)}.")
        if isinstance(batch_size, BatchOptions):
            return dataclasses.replace(batch_size, **options)
        return cls(batch_size, **options)

    def plan(self, n_rows: int) -> BatchPlan:
        """The :class:`BatchPlan` of a split of ``n_rows`` rows."""
        return BatchPlan(n_rows, self.batch_size, shuffle=self.shuffle, seed=self.seed,
                         shuffle_window=self.shuffle_window,
                         drop_remainder=self.drop_remainder)


def copied_options(batch_size: int | BatchOptions, caller: str, options: dict[str, Any]
                   ) -> BatchOptions:
    """Options for a framework that takes batches over as they are: writable copies,
    sparse ``"dense"`` or ``"csr"`` (no ``tf.SparseTensor``)."""
    options.pop("copy", None)
    chosen = BatchOptions.of(batch_size, caller, **options, copy=True)
    if chosen.sparse == "tensor":
        raise ValueError(f"{caller}: sparse is 'dense' or 'csr' here; got 'tensor'.")
    return chosen


class BatchSlice(NamedTuple):
    """Rows ``[start, stop)`` to read; then rows ``take`` of them, if given."""

    start: int
    stop: int
    take: np.ndarray | None = None


def densify(x: scipy.sparse.csr_matrix) -> np.ndarray:
    """``x.toarray()`` into a 64-byte aligned array (see :mod:`ooc._buffers`).

    scipy's own loop adds the values into zeroed memory (``toarray(out=...)``
    would zero it again, with NumPy's slower fill); where a scipy version
    lacks that private function, ``toarray(out=...)`` does the same.
    """
    if _csr_todense is None:
        return x.toarray(out=aligned_empty(x.shape, x.dtype))
    out = aligned_empty(x.shape, x.dtype, zeros=True)
    _csr_todense(x.shape[0], x.shape[1], x.indptr, x.indices, x.data, out)
    return out


def coo_indices(x: scipy.sparse.csr_matrix) -> np.ndarray:
    """``(row, column)`` of every stored value of a canonical CSR batch, as int64."""
    indices = aligned_empty((x.nnz, 2), np.int64)
    indices[:, 0] = _value_rows(x)
    indices[:, 1] = x.indices
    return indices


def _value_rows(x: scipy.sparse.csr_matrix) -> np.ndarray:
    """The row of every stored value of a CSR matrix, as a new int64 array."""
    return np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))


class BatchPlan:
    """The batches of one split: how many, and their rows in each epoch.

    Parameters
    ----------
    n_rows, batch_size
        Rows in the split and rows per batch.
    shuffle
        Permute batch order every epoch.
    seed
        Seed of every permutation; drawn at random when None.
    shuffle_window
        Mix rows across this many consecutive batches (needs ``shuffle``).
    drop_remainder
        Leave out the last batch when it is short.
    """

    def __init__(self, n_rows: int, batch_size: int, *, shuffle: bool = False,
                 seed: int | None = None, shuffle_window: int = 1,
                 drop_remainder: bool = False) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
        if shuffle_window < 1 or (shuffle_window > 1 and not shuffle):
            raise ValueError("shuffle_window must be >= 1, and > 1 only with shuffle=True; "
                             f"got shuffle_window={shuffle_window!r}, shuffle={shuffle!r}.")
        self.n_rows, self.batch_size = int(n_rows), int(batch_size)
        self.shuffle, self.window = shuffle, int(shuffle_window)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.drop_remainder = drop_remainder
        full, rest = divmod(self.n_rows, self.batch_size)
        self.num_batches = full if drop_remainder or not rest else full + 1
        self._order: tuple[int, list[int]] | None = None

    @property
    def has_partial_batch(self) -> bool:
        """Whether the last batch is shorter than ``batch_size``."""
        return self.num_batches * self.batch_size > self.n_rows

    def batch_rows(self, k: int) -> tuple[int, int]:
        """Row range of on-disk batch ``k``."""
        start = k * self.batch_size
        return start, min(start + self.batch_size, self.n_rows)

    def _epoch_order(self, epoch: int) -> list[int]:
        """On-disk batch indices in the order epoch ``epoch`` visits them."""
        cached = self._order
        if cached is not None and cached[0] == epoch:
            return cached[1]
        if not self.shuffle:
            order = np.arange(self.num_batches)
        else:
            n_windows = -(-self.num_batches // self.window)
            windows = np.random.default_rng([self.seed, epoch]).permutation(n_windows)
            order = (windows[:, None] * self.window + np.arange(self.window)).ravel()
            order = order[order < self.num_batches]
        self._order = (epoch, order.tolist())
        return self._order[1]

    def locate(self, i: int, epoch: int = 0) -> BatchSlice:
        """Rows of batch ``i`` (0-based position within epoch ``epoch``)."""
        if not 0 <= i < self.num_batches:
            raise IndexError(f"batch index must be in [0, {self.num_batches}); got {i}.")
        k = self._epoch_order(epoch)[i]
        if self.window == 1:
            return BatchSlice(*self.batch_rows(k))
        w = k // self.window
        first, last = w * self.window, min((w + 1) * self.window, self.num_batches) - 1
        w_start, w_stop = self.batch_rows(first)[0], self.batch_rows(last)[1]
        perm = np.random.default_rng([self.seed, epoch, w]).permutation(w_stop - w_start)
        start, stop = self.batch_rows(k)
        return BatchSlice(w_start, w_stop, perm[start - w_start:stop - w_start])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_order": None}


class ClassMixCheck:
    """Warns once when the first batches of an epoch each hold a single class.

    A dataset written in class order (the ``HDF5Matrix`` trap) gives such
    batches whatever the batch order, and a model fed them does not learn.
    The warning is given only where a uniform mix of the split's classes
    (the manifest's ``label_counts``) would make that many single-class
    batches in a row less likely than one in a million.
    """

    BATCHES = 8

    def __init__(self, split: Split) -> None:
        counts = split.label_mix  # a shard's label_counts would read its labels
        self.p = counts[counts > 0] / counts.sum() if counts.sum() else np.ones(1)
        self.name = split.name
        self.single: dict[int, bool] = {}

    def see(self, i: int, y: np.ndarray) -> bool:
        """Note batch ``i``'s labels; True once the check is done."""
        if len(self.p) < 2 or i >= self.BATCHES or not len(y):
            return len(self.p) < 2 or len(self.single) >= self.BATCHES
        self.single[i] = bool((y == y[0]).all())
        if len(self.single) < self.BATCHES:
            return False
        chance = float((self.p ** len(y)).sum()) ** self.BATCHES
        if all(self.single.values()) and chance < 1e-6:
            warnings.warn(ClassSortedWarning(
                f"split {self.name!r}: each of the first {self.BATCHES} batches holds a single "
                f"class of {len(self.p)}: the rows are stored sorted by class, and shuffling "
                "batches or windows cannot mix classes further apart. Write the dataset in "
                "shuffled order: ooc.create(..., shuffle=True), or ooc preprocess, which "
                "shuffles at write time."), stacklevel=4)
        return True


class BatchReader:
    """Reads the batches a :class:`BatchPlan` describes from one split.

    Dense rows and labels come back read-only, as views of the stored files
    (no copy; see :mod:`ooc.store._file`) where the layout allows, unless
    ``copy`` is set, which makes every batch a new, writable array.
    Densified sparse batches are new arrays either way.  Thread-safe.  Keeps
    the last few shuffle windows it read, so the batches of one window cost
    one read.
    """

    def __init__(self, split: Split, options: BatchOptions,
                 plan: BatchPlan | None = None) -> None:
        self.split, self.options = split, options
        self.plan = options.plan(len(split)) if plan is None else plan  # fixes a None seed
        self.copy = options.copy
        self._densify = options.sparse == "dense" and split.is_sparse
        # a batch costs a few microseconds of lookups otherwise, a tenth of an epoch's time
        self._view_x = None if split.is_sparse else split.x.viewer()  # type: ignore[union-attr]
        self._view_y = split.y.viewer()
        self._windows: OrderedDict[tuple[int, int], tuple[Any, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._mix: ClassMixCheck | None = ClassMixCheck(split)

    @property
    def sparse_tensors(self) -> bool:
        """Whether sparse ``x`` is to be handed out as ``tf.SparseTensor``."""
        return self.split.is_sparse and self.options.sparse == "tensor"

    def __len__(self) -> int:
        return self.plan.num_batches

    def read(self, i: int, epoch: int = 0) -> tuple[Any, np.ndarray]:
        """Return ``(x, y)`` of batch ``i`` of epoch ``epoch``."""
        start, stop, take = self.plan.locate(i, epoch)
        if take is None:
            x, y = self._rows(start, stop, self.copy)
        else:
            x, y = self._window(start, stop)
            x, y = x[take], y[take]
            if not self.copy:  # read-only like every other batch, whatever the options
                y.flags.writeable = False
                if isinstance(x, np.ndarray):
                    x.flags.writeable = False
        if self._densify:
            x = densify(x)
        if self._mix is not None and epoch == 0 and self._mix.see(i, y):
            self._mix = None
        return x, y

    def _rows(self, start: int, stop: int, copy: bool) -> tuple[Any, np.ndarray]:
        split = self.split
        if copy:
            return split.x.read(start, stop), split.y.read(start, stop)
        x = split.x.read(start, stop) if self._view_x is None else self._view_x(start, stop)
        return x, self._view_y(start, stop)

    def _window(self, start: int, stop: int) -> tuple[Any, np.ndarray]:
        key = (start, stop)
        with self._lock:
            hit = self._windows.get(key)
        if hit is None:
            hit = self._rows(start, stop, copy=False)  # batches are taken from it by copy
            with self._lock:
                self._windows[key] = hit
                while len(self._windows) > 2:
                    self._windows.popitem(last=False)
        return hit

    def state(self, epoch: int, position: int) -> dict[str, Any]:
        """Batch ``position`` of epoch ``epoch`` and what fixes the order: a few
        integers (a dict that JSON keeps) to resume from (:meth:`check_state`)."""
        plan = self.plan
        return {"epoch": int(epoch), "position": int(position), "seed": plan.seed,
                "batch_size": plan.batch_size, "rows": plan.n_rows, "shuffle": plan.shuffle,
                "shuffle_window": plan.window, "drop_remainder": plan.drop_remainder}

    def check_state(self, state: dict[str, Any]) -> tuple[int, int]:
        """``(epoch, position)`` of a :meth:`state` of batches in this reader's order;
        a state of any other order is refused rather than resume with other batches."""
        ours = self.state(0, 0)
        differ = {k: (v, state.get(k)) for k, v in ours.items()
                  if k not in ("epoch", "position") and state.get(k) != v}
        if differ:
            raise ValueError(
                "this state is of batches in another order (" + ", ".join(
                    f"{k}: {theirs!r} there, {ours!r} here" for k, (ours, theirs) in
                    differ.items()) + "). Make the batches with the options and seed "
                "of those the state came from.")
        epoch, position = int(state["epoch"]), int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(f"position {position} is outside an epoch of {len(self)} batches.")
        return epoch, position

    def __getstate__(self) -> dict[str, Any]:
        return {"split": self.split, "options": self.options, "plan": self.plan}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]


class BatchIterator:
    """The batches of :meth:`ooc.reader.Split.iter_batches`, with a state to resume from.

    :meth:`get_state` is a few integers (a dict that JSON keeps): the epoch,
    the next batch's position in it, and what fixes the order (seed,
    batch size, rows, shuffle settings).  An iterator made with the same
    options and given that state by :meth:`set_state` yields exactly the
    batches the first would have yielded next, in another process too.
    """

    def __init__(self, reader: BatchReader, epoch: int = 0, repeat: bool = False,
                 convert: Callable[[Any], Any] | None = None) -> None:
        self._reader, self._repeat, self._convert = reader, repeat, convert
        self.epoch, self.position = int(epoch), 0

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[Any, np.ndarray]:
        if self.position >= len(self._reader):
            if not self._repeat or not len(self._reader):
                raise StopIteration
            self.epoch, self.position = self.epoch + 1, 0
        x, y = self._reader.read(self.position, self.epoch)
        self.position += 1
        return (x if self._convert is None else self._convert(x)), y

    def get_state(self) -> dict[str, Any]:
        """Where this iterator is: ``{"epoch", "position", ...}`` (see the class)."""
        return self._reader.state(self.epoch, self.position)

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`get_state` of an iterator of the same split
        and options); anything else is refused rather than yield other batches."""
        self.epoch, self.position = self._reader.check_state(state)

