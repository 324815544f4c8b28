"""Reading datasets: :func:`open`, :class:`Dataset`, :class:`Split`.

``split.x[a:b]`` is one contiguous, checksum-verified read.  Batches for
training come from :meth:`Split.batches` (a Keras ``PyDataset``),
:meth:`Split.to_tf_dataset` (a ``tf.data.Dataset``) or
:meth:`Split.iter_batches` (a resumable iterator); Keras and TensorFlow are
imported only when the first two are called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, ItemsView, Iterator, KeysView
from copy import copy as shallow_copy
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import scipy.sparse

from .batching import BatchIterator, BatchOptions, BatchPlan, BatchReader
from .errors import DamagedDatasetError, SplitNotFoundError
from .format import array_keys
from .store import open_store
from .store.base import StoreReader, Verify
from .store.remote import is_url, local_path, open_remote


def _row_range(index: Any, n_rows: int) -> tuple[int, int, bool]:
    """Turn an int or a step-1 slice into ``(start, stop, is_int)``."""
    if isinstance(index, (int, np.integer)):
        i = int(index) + (n_rows if index < 0 else 0)
        if not 0 <= i < n_rows:
            raise IndexError(f"row index {index} is out of range for {n_rows} rows.")
        return i, i + 1, True
    if isinstance(index, slice):
        start, stop, step = index.indices(n_rows)
        if step != 1:
            raise IndexError(f"only contiguous slices (step 1) are read; got step {step}.")
        return start, max(start, stop), False
    raise TypeError(f"rows are read with an int or a slice like x[a:b]; got "
                    f"{type(index).__name__}. For scattered rows, read a covering range.")


class Column:
    """One stored array of a split (``y``, ``row_ids``, dense ``x``)."""

    def __init__(self, store: StoreReader, key: str, n_rows: int, dtype: str,
                 row_shape: tuple[int, ...] = ()) -> None:
        self._store, self.key = store, key
        self.shape = (n_rows, *row_shape)
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        start, stop, single = _row_range(index, len(self))
        rows = self.read(start, stop)
        return rows[0] if single else rows

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``, a range the caller has checked (batch plans)."""
        return self._store.read(self.key, start, stop)

    def view(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` read-only, where possible without a copy (batch plans)."""
        return self._store.view(self.key, start, stop)

    def viewer(self) -> Callable[[int, int], np.ndarray]:
        """:meth:`view` without the lookups in between, for a loop over many batches."""
        return self._store.viewer(self.key)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)

    def __repr__(self) -> str:
        return f"<ooc column {self.key} shape={self.shape} dtype={self.dtype}>"


@functools.lru_cache(maxsize=4)
def _empty_csr(n_rows: int, n_cols: int, dtype: np.dtype) -> scipy.sparse.csr_matrix:
    """An empty matrix whose copies take a batch's arrays as they are.

    scipy's ``csr_matrix((data, indices, indptr))`` copies any array that
    is a view into a buffer over twice its length (``_prune_array``),
    which every batch read into a pooled buffer is, and checks the arrays:
    50-75 us for a 128-row batch in a loop of its own, several times that
    inside ``fit``.  A copy of an empty matrix with its arrays set shares
    them; stored batches are canonical (made so when written).
    """
    return scipy.sparse.csr_matrix((n_rows, n_cols), dtype=dtype)


class CsrColumn:
    """Sparse CSR ``x`` of a split; slices come back as ``csr_matrix``."""

    def __init__(self, store: StoreReader, key: str, n_rows: int, n_cols: int,
                 dtype: str, nnz: int) -> None:
        self._store, self.key = store, key
        self.shape = (n_rows, n_cols)
        self.dtype, self.nnz = np.dtype(dtype), nnz

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> scipy.sparse.csr_matrix:
        start, stop, _ = _row_range(index, len(self))
        return self.read(start, stop)

    def read(self, start: int, stop: int) -> scipy.sparse.csr_matrix:
        """Rows ``[start, stop)``, a range the caller has checked (batch plans)."""
        indptr = self._store.read(f"{self.key}/indptr", start, stop + 1)
        lo, hi = int(indptr[0]), int(indptr[-1])
        indices = self._store.read(f"{self.key}/indices", lo, hi)
        csr = shallow_copy(_empty_csr(stop - start, self.shape[1], self.dtype))
        csr.data = self._store.read(f"{self.key}/data", lo, hi)
        csr.indices, csr.indptr = indices, (indptr - lo).astype(indices.dtype)
        csr.has_sorted_indices = True
        return csr

    def __repr__(self) -> str:
        return f"<ooc csr {self.key} shape={self.shape} nnz={self.nnz} dtype={self.dtype}>"


class Split:
    """One split of a dataset: ``x``, ``y`` and ``row_ids`` with one row per example."""

    def __init__(self, store: StoreReader, name: str, info: dict[str, Any]) -> None:
        self._store, self.name, self.info = store, name, info
        n, x = info["n_rows"], info["x"]
        self.is_sparse = x["kind"] == "csr"
        self.x: Column | CsrColumn = (
            CsrColumn(store, f"{name}/x", n, x["n_cols"], x["dtype"], x["nnz"])
            if self.is_sparse else Column(store, f"{name}/x", n, x["dtype"], (x["n_cols"],)))
        self.y = Column(store, f"{name}/y", n, info["y"]["dtype"])
        self.row_ids = Column(store, f"{name}/row_ids", n, info["row_ids"]["dtype"])

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of ``x``: ``(rows, features)``."""
        return self.x.shape  # type: ignore[return-value]

    @property
    def nnz(self) -> int:
        """Stored non-zeros of sparse ``x``; rows * features for dense ``x``."""
        return self.x.nnz if isinstance(self.x, CsrColumn) else self.shape[0] * self.shape[1]

    @property
    def label_counts(self) -> np.ndarray:
        """Number of rows with each label, indexed by label."""
        return np.asarray(self.info.get("label_counts", []), dtype=np.int64)

    def shard(self, index: int, count: int, *, equal: bool = False) -> Split:
        """The rows of worker ``index`` (0 to ``count - 1``) of ``count``: one contiguous
        range each, every row in exactly one shard, with the whole batch API.

        Shard sizes differ by at most one row, so with some batch sizes one
        shard has a batch more than another; where every worker must take
        the same number of steps (collective training), pass ``equal=True``:
        every shard gets ``len(split) // count`` rows and the last
        ``len(split) % count`` rows are left out.  Rows written by ``ooc
        preprocess`` or ``ooc.create(shuffle=True)`` are in a uniform random
        order, so each range is a uniform sample of the split.
        """
        if not (isinstance(count, int) and isinstance(index, int) and 0 <= index < count):
            raise ValueError(f"shard(index, count) needs 0 <= index < count; got {index}, "
                             f"{count}.")
        n = len(self)
        start, stop = ((index * (n // count), (index + 1) * (n // count)) if equal
                       else (index * n // count, (index + 1) * n // count))
        return SplitShard(self, start, stop)

    @property
    def label_mix(self) -> np.ndarray:
        """Label counts of the rows this split was drawn from (the manifest's), for checks
        of how batches mix classes; a shard's are its whole split's."""
        return self.label_counts

    def steps_per_epoch(self, batch_size: int, drop_remainder: bool = False) -> int:
        """Number of batches in one pass over the split."""
        return BatchPlan(len(self), batch_size, drop_remainder=drop_remainder).num_batches

    def batch_reader(self, batch_size: int | BatchOptions, **options: Any) -> BatchReader:
        """Return the :class:`~ooc.batching.BatchReader` the adapters share.

        ``options`` are those of :class:`~ooc.batching.BatchOptions`.
        """
        return BatchReader(self, BatchOptions.of(batch_size, "batch_reader", **options))

    def iter_batches(self, batch_size: int | BatchOptions, *, epoch: int = 0,
                     repeat: bool = False, **options: Any) -> BatchIterator:
        """An iterator of the ``(x, y)`` batches of one epoch, or of epochs without end,
        that can stop and resume: ``it.get_state()``, ``it.set_state(state)``
        (:class:`~ooc.batching.BatchIterator`); pass ``seed=`` with ``shuffle``.

        With ``repeat=True`` this is the guide's endless ``_data_generator``:
        pair it with ``steps_per_epoch=split.steps_per_epoch(batch_size)``.
        ``options`` are those of :class:`~ooc.batching.BatchOptions`
        (``shuffle``, ``seed``, ``shuffle_window``, ``drop_remainder``,
        ``sparse``, ``copy``).  Dense ``x`` and ``y`` are read-only, views of
        the stored files where the layout allows, valid as long as they are
        referenced; ``copy=True`` yields writable copies.
        """
        reader = BatchReader(self, BatchOptions.of(batch_size, "iter_batches", **options))
        to_tensor = None
        if reader.sparse_tensors:
            from ._tensorflow import import_tensorflow
            from .keras_dataset import csr_to_sparse_tensor as to_tensor

            import_tensorflow()  # now, not at the first batch
        return BatchIterator(reader, epoch, repeat, to_tensor)

    def batches(self, batch_size: int | BatchOptions, *, epoch: int = 0, workers: int = 1,
                use_multiprocessing: bool = False, max_queue_size: int = 10,
                **options: Any) -> Any:
        """Return a ``keras.utils.PyDataset`` of ``(x, y)`` batches for ``model.fit``.

        ``options`` are those of :class:`~ooc.batching.BatchOptions`;
        ``workers``, ``use_multiprocessing`` and ``max_queue_size`` go to
        ``PyDataset``.  Pass ``shuffle=False`` to ``fit``: these batches are
        shuffled already, and ``fit``'s default shuffles them again in an order
        no seed fixes, reading a whole shuffle window for every batch (ooc
        warns).  ``epoch`` is the order the first epoch takes: pass ``fit``'s
        ``initial_epoch`` when resuming, so that the epochs after it are those
        of an uninterrupted run (:class:`ooc.BackupAndRestore` resumes
        mid-epoch too).
        """
        from .keras_dataset import KerasBatches

        reader = BatchReader(self, BatchOptions.of(batch_size, "batches", **options))
        return KerasBatches(reader, epoch=epoch, workers=workers,
                            use_multiprocessing=use_multiprocessing,
                            max_queue_size=max_queue_size)

    def to_tf_dataset(self, batch_size: int | BatchOptions, *,
                      num_parallel_reads: int | None = None, prefetch: int | None = None,
                      **options: Any) -> Any:
        """Return a ``tf.data.Dataset`` of ``(x, y)`` batches, prefetched.

        Each iteration over the dataset is one epoch with its own shuffle.
        ``options`` are those of :class:`~ooc.batching.BatchOptions`;
        ``num_parallel_reads`` and ``prefetch`` default to ``tf.data.AUTOTUNE``.
        """
        from .tf_dataset import make_tf_dataset

        reader = BatchReader(self, BatchOptions.of(batch_size, "to_tf_dataset", **options))
        return make_tf_dataset(reader, num_parallel_reads=num_parallel_reads, prefetch=prefetch)

    def __repr__(self) -> str:
        kind = "csr" if self.is_sparse else "dense"
        return f"<ooc split {self.name!r} {kind} shape={self.shape} dtype={self.x.dtype}>"


class _RowRange:
    """A store's row-indexed arrays of one split seen from row ``offset`` on (a CSR
    ``x``'s ``data`` and ``indices`` are indexed by ``indptr``'s values, unchanged)."""

    def __init__(self, store: Any, offset: int, keys: frozenset[str]) -> None:
        self._store, self._offset, self._keys = store, offset, keys

    def _shift(self, key: str) -> int:
        return self._offset if key in self._keys else 0

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        o = self._shift(key)
        return self._store.read(key, start + o, stop + o)

    def view(self, key: str, start: int, stop: int) -> np.ndarray:
        o = self._shift(key)
        return self._store.view(key, start + o, stop + o)

    def viewer(self, key: str) -> Callable[[int, int], np.ndarray]:
        view, o = self._store.viewer(key), self._shift(key)
        return view if not o else lambda start, stop: view(start + o, stop + o)

    def __getattr__(self, name: str) -> Any:  # describe, verify, ...
        if name.startswith("_"):  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self._store, name)


class SplitShard(Split):
    """Rows ``[start, stop)`` of a split as a split of their own (:meth:`Split.shard`)."""

    def __init__(self, parent: Split, start: int, stop: int) -> None:
        name, info = parent.name, parent.info
        x = dict(info["x"])
        keys = {f"{name}/y", f"{name}/row_ids"}
        if x["kind"] == "csr":
            keys.add(f"{name}/x/indptr")
            ends = parent._store.read(f"{name}/x/indptr", start, start + 1), \
                parent._store.read(f"{name}/x/indptr", stop, stop + 1)
            x["nnz"] = int(ends[1][0] - ends[0][0])
        else:
            keys.add(f"{name}/x")
        shard_info = {k: v for k, v in info.items() if k != "label_counts"}
        super().__init__(_RowRange(parent._store, start, frozenset(keys)), name,
                         {**shard_info, "n_rows": stop - start, "x": x})
        self.rows = (start, stop)  # in the whole split
        self._mix = parent.label_mix
        self._counts: np.ndarray | None = None

    @property
    def label_mix(self) -> np.ndarray:
        return self._mix

    @property
    def label_counts(self) -> np.ndarray:
        """Rows with each label in this shard (read from ``y`` once, in bounded pieces)."""
        if self._counts is None:
            counts = np.zeros(len(self._mix), np.int64)
            for start in range(0, len(self), 1 << 20):
                y = self.y.read(start, min(len(self), start + (1 << 20)))
                counts = add_counts(counts, np.bincount(y.astype(np.int64)))
            self._counts = counts
        return self._counts

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} rows={self.rows[0]}:{self.rows[1]}>"


class Dataset:
    """An opened ooc dataset: a read-only mapping of split name -> :class:`Split`.

    ``ds["train"]``, ``"train" in ds``, ``list(ds)`` (split names) and
    ``len(ds)`` (number of splits) work as for a dict; ``ds.train`` too,
    for every split name that is not one of the names below (writers
    refuse those, see :data:`RESERVED_SPLIT_NAMES`).
    """

    # Annotated so that RESERVED_SPLIT_NAMES sees the instance attributes too.
    path: Path
    manifest: dict[str, Any]
    splits: dict[str, Split]

    def __init__(self, path: str | Path, verify: Verify = "once",
                 cache_dir: str | Path | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        if is_url(path):  # its files come through the local cache
            self.path = path  # type: ignore[assignment]
            self._store = open_remote(str(path), verify, cache_dir, storage_options)
        else:
            self.path = local_path(path)
            self._store = open_store(self.path, verify)
        self.manifest: dict[str, Any] = self._store.manifest
        self.splits: dict[str, Split] = {
            name: Split(self._store, name, info)
            for name, info in self.manifest["splits"].items()}

    @property
    def classes(self) -> list[str] | None:
        """Class names, indexed by label."""
        return self.manifest.get("classes")

    @property
    def feature_names(self) -> list[str] | None:
        """Feature (column) names, e.g. the selected n-grams."""
        return self.manifest.get("feature_names")

    @property
    def vocabulary(self) -> dict[str, int] | None:
        """Feature name -> column index, like scikit-learn's ``vocabulary_``."""
        names = self.feature_names
        return None if names is None else {name: i for i, name in enumerate(names)}

    @property
    def metadata(self) -> dict[str, Any]:
        """The free-form config stored with the dataset."""
        return self.manifest.get("config") or {}

    @property
    def extras(self) -> list[str]:
        """Names of the extra arrays stored with the dataset."""
        return sorted(self.manifest.get("extras") or {})

    def extra(self, name: str) -> np.ndarray:
        """Read the extra array ``name`` (checksums verified)."""
        info = (self.manifest.get("extras") or {}).get(name)
        if info is None:
            raise KeyError(f"{self.path}: no extra array {name!r}; it has {self.extras}.")
        return self._store.read(f"extra/{name}", 0, info["n"])

    @functools.cached_property
    def vectorizer(self) -> Any:
        """The fitted vectorizer that made this dataset (``ooc preprocess``), or None.

        ``ds.vectorizer.transform(texts)`` vectorizes new texts the same way;
        ``ds.vectorizer.save(path)`` keeps it for predicting without the
        dataset.  Built on first access, then the same object.
        """
        settings = self.metadata.get("vectorizer")
        if settings is None:
            return None
        from .text.saved import rebuild_vectorizer

        prefix = "vectorizer/"
        arrays = {n[len(prefix):]: self.extra(n) for n in self.extras if n.startswith(prefix)}
        return rebuild_vectorizer(settings, arrays)

    def __getitem__(self, name: str) -> Split:
        try:
            return self.splits[name]
        except KeyError:
            raise SplitNotFoundError(
                f"{self.path}: no split {name!r}; it has {sorted(self.splits)}.") from None

    def __getattr__(self, name: str) -> Split:
        if name.startswith("_") or "splits" not in self.__dict__:
            raise AttributeError(name)
        return self[name]

    def __contains__(self, name: object) -> bool:
        return name in self.splits

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __len__(self) -> int:
        return len(self.splits)

    def keys(self) -> KeysView[str]:
        """Split names, in the order they were written (``dict(ds)`` works)."""
        return self.splits.keys()

    def items(self) -> ItemsView[str, Split]:
        """``(name, split)`` pairs."""
        return self.splits.items()

    def verify(self) -> None:
        """Check every stored block's checksum, and the labels against the manifest.

        Dtypes, shapes and checksum counts were checked against the manifest
        when the dataset was opened.
        """
        for name, split in self.splits.items():
            for key in array_keys(name, "csr" if split.is_sparse else "dense"):
                self._store.verify(key)
            self._check_labels(split)
        for name in self.extras:
            self._store.verify(f"extra/{name}")

    def _check_labels(self, split: Split, rows: int = 1 << 20) -> None:
        """Labels within the classes, counted as the manifest says."""
        counts = np.zeros(len(split.label_counts), np.int64)
        n_classes = len(self.classes) if self.classes is not None else None
        for start in range(0, len(split), rows):
            y = split.y.read(start, min(start + rows, len(split)))
            if len(y) and (y.min() < 0 or (n_classes is not None and y.max() >= n_classes)):
                raise DamagedDatasetError(
                    f"{self._store.describe(split.y.key)}: labels from {y.min()} to {y.max()} "
                    f"in rows {start}:{start + len(y)}; expected 0 to {n_classes - 1}. The "
                    "dataset is damaged; write it again.")
            counts = add_counts(counts, np.bincount(y))
        if "label_counts" in split.info and not np.array_equal(counts, split.label_counts):
            raise DamagedDatasetError(
                f"{self._store.describe(split.y.key)}: the labels count {counts.tolist()} per "
                f"class; the manifest says {split.label_counts.tolist()}. The file is damaged "
                "or not this split's; restore it or write the dataset again.")

    def close(self) -> None:
        """Close the files this process opened."""
        self._store.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        splits = ", ".join(f"{n}={len(s)}" for n, s in self.splits.items())
        return f"<ooc dataset {self.path} ({splits})>"


# Names a split cannot take: ``ds.<name>`` would find the Dataset's own
# attribute, not the split.  Derived from the class so it cannot drift.
RESERVED_SPLIT_NAMES: frozenset[str] = frozenset(
    {n for n in dir(Dataset) if not n.startswith("_")} | set(Dataset.__annotations__))


def add_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of two count vectors of possibly different lengths."""
    out = np.zeros(max(len(a), len(b)), np.int64)
    out[: len(a)] += a
    out[: len(b)] += b
    return out


def open(path: str | Path, verify: Verify = "once", *, cache_dir: str | Path | None = None,
         storage_options: dict[str, Any] | None = None) -> Dataset:
    """Open the dataset at ``path`` (HDF5 file, NumPy directory or sharded directory).

    ``verify`` sets when stored checksums are checked: ``"once"`` (default:
    each block the first time this process reads it), ``"always"`` (on every
    read) or ``"never"``.  ``path`` may be a URL (``s3://bucket/ds``, any
    fsspec URL; ``pip install 'ooc[s3]'``): the dataset's files are fetched
    into ``cache_dir`` (default ``$OOC_CACHE_DIR`` or ``~/.cache/ooc``) as
    they are first read and checked there; ``storage_options`` go to fsspec
    (credentials, ``endpoint_url``...).
    """
    return Dataset(path, verify, cache_dir, storage_options)
