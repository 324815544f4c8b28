"""Writing datasets chunk by chunk: :func:`create` and :class:`DatasetWriter`.

Memory while writing is bounded by the chunk being appended: nothing of
earlier chunks is kept but a few counters per split.  With ``shuffle=True``
the rows are held in memory up to a quarter of ``memory_budget``, beyond
that scattered into seeded buckets on disk (:mod:`ooc.shuffle`, as
``ooc preprocess`` does), and written in shuffled order at commit, one
bucket at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import scipy.sparse

from . import __version__
from .errors import ChunkError
from .format import EXTRA_NAME, FORMAT_NAME, FORMAT_VERSION, SPLIT_NAME, array_keys
from .reader import RESERVED_SPLIT_NAMES, add_counts
from .shuffle import Rows, Schema, concat, ordered_buckets, scatter
from .store import writer_class
from .store._atomic import (
    check_output,
    hold_lock,
    publish,
    remove,
    remove_dead_temporaries,
    spill_path,
    temporary_path,
)
from .store._disk import writing

DEFAULT_MEMORY_BUDGET = 256 << 20
SPILL_BUCKETS = 64
"""Buckets per split while rows are appended: buckets found larger than the
budget at commit are split then, at the cost of one more write of their rows."""


def check_split_name(split: str) -> None:
    """Refuse names that are not identifiers or that ``ds.<name>`` would not reach."""
    if not SPLIT_NAME.match(split):
        raise ChunkError(f"split names are identifiers (letters, digits, _; not starting with "
                         f"a digit); got {split!r}. Rename the split.")
    if split in RESERVED_SPLIT_NAMES:
        raise ChunkError(f"split name {split!r} is taken by the Dataset's own attribute "
                         f"ds.{split}; pick another name (reserved: "
                         f"{', '.join(sorted(RESERVED_SPLIT_NAMES))}).")


@dataclass
class Metadata:
    """Class names, feature names and free-form config of a dataset being written."""

    classes: list[str] | None = None
    feature_names: list[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def set(self, *, classes: list[str] | None = None, feature_names: list[str] | None = None,
            config: dict[str, Any] | None = None) -> None:
        """Set the fields given (see :meth:`DatasetWriter.set_metadata`)."""
        if classes is not None:
            self.classes = [str(c) for c in classes]
        if feature_names is not None:
            self.feature_names = [str(f) for f in feature_names]
        if config is not None:
            try:
                json.dumps(config)
            except TypeError as exc:
                raise ValueError(f"config must be JSON-serialisable; {exc}.") from None
            self.config = config

    def check(self, splits: dict[str, tuple[int, int]]) -> None:
        """Raise ChunkError unless the names fit ``splits`` (name: (labels used, columns))."""
        for name, (n_labels, n_cols) in splits.items():
            if self.classes is not None and n_labels > len(self.classes):
                raise ChunkError(f"split {name!r} has label {n_labels - 1}, but only "
                                 f"{len(self.classes)} class names were given.")
            if self.feature_names is not None and len(self.feature_names) != n_cols:
                raise ChunkError(f"split {name!r} has {n_cols} columns, but "
                                 f"{len(self.feature_names)} feature names were given.")

    def fields(self) -> dict[str, Any]:
        """The manifest's ``classes``, ``feature_names`` and ``config``."""
        return {"classes": self.classes, "feature_names": self.feature_names,
                "config": self.config}


@dataclass
class _SplitState:
    kind: str
    dtype: np.dtype
    n_cols: int
    n_rows: int = 0
    nnz: int = 0
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def schema(self) -> Schema:
        """How the rows of this split are spilled to be shuffled."""
        y = {"y": ("<i8", ())}
        if self.kind == "csr":
            return Schema(columns=y, ragged={"data": self.dtype.str, "indices": "<i4"})
        return Schema(columns={"x": (self.dtype.str, (self.n_cols,)), **y})

    def describe(self) -> dict[str, Any]:
        x: dict[str, Any] = {"kind": self.kind, "dtype": self.dtype.str, "n_cols": self.n_cols}
        if self.kind == "csr":
            x["nnz"] = self.nnz
        return {"n_rows": self.n_rows, "x": x, "y": {"dtype": "<i8"},
                "row_ids": {"dtype": "<i8"}, "label_counts": self.label_counts.tolist()}


def _as_csr(x: Any) -> scipy.sparse.csr_matrix:
    """Canonical CSR copy: sorted, summed duplicates, int32 indices, int64 indptr."""
    csr = scipy.sparse.csr_matrix(x, copy=True)
    csr.sum_duplicates()
    if csr.shape[1] >= 2**31:
        raise ChunkError(f"sparse x has {csr.shape[1]} columns; at most 2**31 - 1 are supported.")
    return csr


def _as_dense(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ChunkError(f"x must be 2-D (rows, features); got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise ChunkError(f"x must hold numbers; got dtype {arr.dtype}.")
    return arr


def _as_labels(y: Any, n_rows: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n_rows:
        raise ChunkError(f"y must be 1-D with one label per row of x ({n_rows}); "
                         f"got shape {arr.shape}.")
    if arr.dtype.kind not in "biu":
        raise ChunkError(
            f"y must hold integer class labels; got dtype {arr.dtype}. Map labels to "
            "integers first, e.g. with np.unique(labels, return_inverse=True).")
    labels = arr.astype(np.int64)
    if n_rows and labels.min() < 0:
        raise ChunkError(f"y must hold labels >= 0; got {labels.min()}.")
    return labels


class Transaction:
    """A writer used in a ``with`` block: committed at its end, aborted on an error."""

    path: Path
    _closed: bool

    def commit(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self.path} is already committed or aborted.")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class DatasetWriter(Transaction):
    """Appends chunks to the splits of a new dataset; commits atomically.

    Use :func:`ooc.create` (its parameters are documented there).  Nothing
    is visible at ``path`` until :meth:`commit` (called by the ``with``
    block on success) returns.  With ``shuffle=True`` the rows of each split
    are written at commit, in shuffled order.
    """

    def __init__(self, path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                 shuffle: bool = False, seed: int = 0,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, **options: Any) -> None:
        if memory_budget < (16 << 20):
            raise ValueError(f"memory_budget must be >= 16 MiB; got {memory_budget} bytes.")
        self.path = Path(path)
        check_output(self.path, overwrite)
        if not self.path.absolute().parent.is_dir():  # else the error names the temporary
            raise FileNotFoundError(
                f"{self.path}: the folder {self.path.absolute().parent} does not exist; "
                "create it first.")
        self._overwrite = overwrite
        self.format = format
        remove_dead_temporaries(self.path)  # a killed writer's; they would only take space
        self._tmp = temporary_path(self.path)
        self._store = writer_class(format)(self._tmp, **options)
        self._spill = _Spill(spill_path(self._tmp), seed, memory_budget) if shuffle else None
        self._splits: dict[str, _SplitState] = {}
        self._next_row_id = 0
        self._meta = Metadata()
        self._extras: dict[str, dict[str, Any]] = {}
        self._closed = False

    def set_metadata(self, *, classes: list[str] | None = None,
                     feature_names: list[str] | None = None,
                     config: dict[str, Any] | None = None) -> None:
        """Set class names, feature names (or vocabulary) and a JSON config."""
        self._meta.set(classes=classes, feature_names=feature_names, config=config)

    def put_array(self, name: str, array: Any) -> None:
        """Store one extra 1-D array under ``extra/<name>`` (e.g. a fitted vectorizer).

        Calling it again with the same name appends (same dtype), so a large
        array can be stored piece by piece.
        """
        self._check_open()
        arr = np.ascontiguousarray(array)
        if arr.ndim != 1 or arr.dtype.kind not in "biuf" or not EXTRA_NAME.match(name):
            raise ValueError(f"extra arrays are 1-D numeric arrays with names like 'a/b'; got "
                             f"{name!r} with shape {arr.shape}, dtype {arr.dtype}.")
        info = self._extras.setdefault(name, {"dtype": arr.dtype.str, "n": 0})
        if info["dtype"] != arr.dtype.str:
            raise ValueError(f"extra array {name!r} holds {info['dtype']}; got {arr.dtype}.")
        self._store.append(f"extra/{name}", arr)
        info["n"] += len(arr)

    def append(self, split: str, x: Any, y: Any, row_ids: Any = None) -> None:
        """Append the rows of ``x`` (array or scipy.sparse) with labels ``y``.

        ``row_ids`` default to a running count of rows appended to this
        writer, i.e. the source position when chunks arrive in source order.
        """
        self._check_open()
        sparse = scipy.sparse.issparse(x)
        x = _as_csr(x) if sparse else _as_dense(x)
        state = self._state(split, "csr" if sparse else "dense", x)
        data = x.data if sparse else x
        if data.dtype != state.dtype:
            if not np.can_cast(data.dtype, state.dtype, "safe"):
                raise ChunkError(
                    f"split {split!r}: x has dtype {state.dtype}; this chunk has "
                    f"{data.dtype}, which does not convert safely. Cast it first.")
            data = data.astype(state.dtype)
        n = x.shape[0]
        y = _as_labels(y, n)
        row_ids = self._row_ids(row_ids, n)
        if sparse:
            rows = Rows(row_ids, {"y": y}, {"data": data,
                                            "indices": x.indices.astype(np.int32, copy=False)},
                        x.indptr.astype(np.int64, copy=False))
        else:
            rows = Rows(row_ids, {"x": data, "y": y})
        if self._spill is None:
            self._store_rows(split, state, rows)
        else:
            self._spill.add(split, rows, state.schema())
        state.n_rows += n
        state.label_counts = add_counts(state.label_counts, np.bincount(y))

    def _state(self, split: str, kind: str, x: Any) -> _SplitState:
        state = self._splits.get(split)
        if state is None:
            check_split_name(split)
            dtype = x.data.dtype if kind == "csr" else x.dtype
            state = self._splits[split] = _SplitState(kind, dtype, int(x.shape[1]))
            if kind == "csr":
                self._store.append(f"{split}/x/indptr", np.zeros(1, dtype=np.int64))
        if state.kind != kind or state.n_cols != x.shape[1]:
            names = {"dense": "dense", "csr": "sparse CSR"}
            raise ChunkError(
                f"split {split!r} holds {names[state.kind]} x with {state.n_cols} columns; "
                f"this chunk is {names[kind]} with {x.shape[1]} columns.")
        return state

    def _store_rows(self, split: str, state: _SplitState, rows: Rows) -> None:
        """Append rows to the store's arrays of ``split``."""
        if state.kind == "csr":
            assert rows.offsets is not None
            self._store.append(f"{split}/x/data", rows.ragged["data"])
            self._store.append(f"{split}/x/indices", rows.ragged["indices"])
            self._store.append(f"{split}/x/indptr", rows.offsets[1:] + state.nnz)
            state.nnz += int(rows.offsets[-1])
        else:
            self._store.append(f"{split}/x", rows.columns["x"])
        self._store.append(f"{split}/y", rows.columns["y"])
        self._store.append(f"{split}/row_ids", rows.row_ids)

    def _store_spilled(self) -> None:
        """Write the spilled rows of every split in shuffled order, then drop the spill."""
        assert self._spill is not None
        for split, state in self._splits.items():
            self._store_rows(split, state, state.schema().empty())  # the arrays, rows or not
            for rows in self._spill.shuffled(split):
                self._store_rows(split, state, rows)
        self._spill.remove()

    def _row_ids(self, row_ids: Any, n: int) -> np.ndarray:
        if row_ids is None:
            ids = np.arange(self._next_row_id, self._next_row_id + n, dtype=np.int64)
        else:
            ids = np.asarray(row_ids)
            if ids.shape != (n,) or ids.dtype.kind not in "iu":
                raise ChunkError(f"row_ids must be {n} integers, one per row; got "
                                 f"shape {ids.shape}, dtype {ids.dtype}.")
            ids = ids.astype(np.int64)
        if n:
            self._next_row_id = int(ids.max()) + 1
        return ids

    def _manifest(self) -> dict[str, Any]:
        arrays = {key: self._store.layout(key) for name, state in self._splits.items()
                  for key in array_keys(name, state.kind)}
        arrays.update({f"extra/{name}": self._store.layout(f"extra/{name}")
                       for name in self._extras})
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "complete": True,
                "created_by": f"ooc {__version__}",
                "splits": {name: s.describe() for name, s in self._splits.items()},
                **self._meta.fields(), "extras": self._extras, "arrays": arrays}

    def commit(self) -> Path:
        """Make every byte durable, then publish the dataset at ``path``."""
        self._check_open()
        try:
            self._meta.check({name: (len(s.label_counts), s.n_cols)
                              for name, s in self._splits.items()})
            if self._spill is not None:
                self._store_spilled()
            self._store.finish(self._manifest())
            check_output(self.path, self._overwrite)  # again: something may have come since
            publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        if not self._closed:
            self._closed = True
            self._store.abort()
            remove(self._tmp)
            if self._spill is not None:
                self._spill.remove()



def create(path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
           shuffle: bool = False, seed: int = 0, memory_budget: int = DEFAULT_MEMORY_BUDGET,
           **options: Any) -> DatasetWriter:
    """Start writing a dataset at ``path``.

    Parameters
    ----------
    path
        Where the dataset appears at commit: an ``.h5`` file (``format="hdf5"``)
        or a directory (``format="npy"``).
    format
        ``"hdf5"`` or ``"npy"``.
    overwrite
        Replace an existing ooc dataset at ``path`` (atomically, at commit).
        Anything else at ``path`` is never replaced (OutputConflictError).
    shuffle
        Write the rows of each split in a seeded, uniformly random order
        instead of the order appended.  Use it for a source sorted by class
        (or by anything else): :meth:`ooc.reader.Split.batches` reads
        contiguous rows, so ``shuffle=True`` there cannot mix classes that
        are stored far apart.  Rows are spilled to a temporary directory
        beside ``path`` as they are appended (as much disk again as the
        rows) and written at commit; ``row_ids`` still name each row's
        source position.  The order is that of ``ooc preprocess`` with the
        same seed: a function of ``seed`` and the row ids only (rows sharing
        a row id stay together, in appended order).
    seed
        Seed of the shuffle.
    memory_budget
        Memory the shuffle may use (default 256 MiB, at least 16 MiB): it
        holds rows in memory up to a quarter of it, spills them to disk
        beyond that, and reads them back at commit a bucket of at most a
        quarter of it at a time.
    **options
        Backend options.  HDF5: ``compression`` (``"gzip"``, ``"lzf"``,
        ``"zstd"``, ``"blosc"``) and ``compression_level``.
    """
    return DatasetWriter(path, format, overwrite=overwrite, shuffle=shuffle, seed=seed,
                         memory_budget=memory_budget, **options)


class _Spill:
    """Rows appended to a shuffling writer until the commit.

    Held in memory up to a bucket's worth (a quarter of the budget), so a
    small dataset never touches the disk; beyond that scattered into seeded
    buckets on disk, each scatter a large piece.
    """

    def __init__(self, root: Path, seed: int, memory_budget: int) -> None:
        self.root, self.seed, self.bucket_bytes = root, seed, memory_budget // 4
        self._held: dict[str, list[Rows]] = {}
        self._held_bytes = 0
        self._schemas: dict[str, Schema] = {}
        self._made = False
        self._lock: int | None = None  # None also where there is no flock

    def add(self, split: str, rows: Rows, schema: Schema) -> None:
        """Take the rows of one chunk of ``split`` (copied: the caller may reuse its arrays)."""
        rows = rows.take(np.arange(len(rows)))
        self._schemas[split] = schema
        self._held.setdefault(split, []).append(rows)
        self._held_bytes += rows.nbytes
        if self._held_bytes > self.bucket_bytes:
            for name in list(self._held):
                self._scatter(name)

    def _scatter(self, split: str) -> None:
        """Move the rows held for ``split`` to its buckets on disk."""
        parts = self._held.pop(split)
        self._held_bytes -= sum(p.nbytes for p in parts)
        if not self._made:
            with writing(self.root):
                self.root.mkdir()
            self._made = True
            self._lock = hold_lock(self.root)  # tells later writers that this spill is in use
        scatter(self.root / split, concat(parts), SPILL_BUCKETS, self.seed, self._schemas[split])

    def shuffled(self, split: str) -> Iterator[Rows]:
        """The rows of ``split`` in shuffled order, at most a bucket's worth at a time."""
        if not (self.root / split).exists():
            if split in self._held:
                yield concat(self._held.pop(split)).shuffled(self.seed)
            return
        if split in self._held:
            self._scatter(split)
        yield from ordered_buckets(self.root / split, SPILL_BUCKETS, self.seed,
                                   self._schemas[split], self.bucket_bytes)

    def remove(self) -> None:
        """Delete the spill (and let go of its lock)."""
        self._held.clear()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        remove(self.root)
