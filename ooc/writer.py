"""Writing datasets chunk by chunk: :func:`create` and :class:`DatasetWriter`.

Memory while writing is bounded by the chunk being appended: nothing of
earlier chunks is kept but a few counters per split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import scipy.sparse

from . import __version__
from .errors import ChunkError
from .format import EXTRA_NAME, FORMAT_NAME, FORMAT_VERSION, SPLIT_NAME, array_keys
from .reader import RESERVED_SPLIT_NAMES
from .store import writer_class
from .store._atomic import (
    check_output,
    publish,
    remove,
    remove_dead_temporaries,
    temporary_path,
)


def _check_split_name(split: str) -> None:
    """Refuse names that are not identifiers or that ``ds.<name>`` would not reach."""
    if not SPLIT_NAME.match(split):
        raise ChunkError(f"split names are identifiers (letters, digits, _; not starting with "
                         f"a digit); got {split!r}. Rename the split.")
    if split in RESERVED_SPLIT_NAMES:
        raise ChunkError(f"split name {split!r} is taken by the Dataset's own attribute "
                         f"ds.{split}; pick another name (reserved: "
                         f"{', '.join(sorted(RESERVED_SPLIT_NAMES))}).")


@dataclass
class _SplitState:
    kind: str
    dtype: np.dtype
    n_cols: int
    n_rows: int = 0
    nnz: int = 0
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

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


class DatasetWriter:
    """Appends chunks to the splits of a new dataset; commits atomically.

    Use :func:`ooc.create`.  Nothing is visible at ``path`` until
    :meth:`commit` (called by the ``with`` block on success) returns.
    """

    def __init__(self, path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                 **options: Any) -> None:
        self.path = Path(path)
        check_output(self.path, overwrite)
        self._overwrite = overwrite
        self.format = format
        remove_dead_temporaries(self.path)  # a killed writer's; they would only take space
        self._tmp = temporary_path(self.path)
        self._store = writer_class(format)(self._tmp, **options)
        self._splits: dict[str, _SplitState] = {}
        self._next_row_id = 0
        self._meta: dict[str, Any] = {"classes": None, "feature_names": None, "config": {}}
        self._extras: dict[str, dict[str, Any]] = {}
        self._closed = False

    def set_metadata(self, *, classes: list[str] | None = None,
                     feature_names: list[str] | None = None,
                     config: dict[str, Any] | None = None) -> None:
        """Set class names, feature names (or vocabulary) and a JSON config."""
        if classes is not None:
            self._meta["classes"] = [str(c) for c in classes]
        if feature_names is not None:
            self._meta["feature_names"] = [str(f) for f in feature_names]
        if config is not None:
            try:
                json.dumps(config)
            except TypeError as exc:
                raise ValueError(f"config must be JSON-serialisable; {exc}.") from None
            self._meta["config"] = config

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
            self._append_csr(split, state, x, data)
        else:
            self._store.append(f"{split}/x", data)
        self._store.append(f"{split}/y", y)
        self._store.append(f"{split}/row_ids", row_ids)
        state.n_rows += n
        counts = np.bincount(y, minlength=len(state.label_counts))
        counts[: len(state.label_counts)] += state.label_counts
        state.label_counts = counts

    def _state(self, split: str, kind: str, x: Any) -> _SplitState:
        state = self._splits.get(split)
        if state is None:
            _check_split_name(split)
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

    def _append_csr(self, split: str, state: _SplitState, x: scipy.sparse.csr_matrix,
                    data: np.ndarray) -> None:
        self._store.append(f"{split}/x/data", data)
        self._store.append(f"{split}/x/indices", x.indices.astype(np.int32, copy=False))
        self._store.append(f"{split}/x/indptr", x.indptr[1:].astype(np.int64) + state.nnz)
        state.nnz += int(x.nnz)

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
        n_classes = len(self._meta["classes"] or ())
        for name, state in self._splits.items():
            if self._meta["classes"] is not None and len(state.label_counts) > n_classes:
                raise ChunkError(f"split {name!r} has label {len(state.label_counts) - 1}, but "
                                 f"only {n_classes} class names were given.")
            n_features = len(self._meta["feature_names"] or ())
            if self._meta["feature_names"] is not None and n_features != state.n_cols:
                raise ChunkError(f"split {name!r} has {state.n_cols} columns, but "
                                 f"{n_features} feature names were given.")
        arrays = {key: self._store.layout(key) for name, state in self._splits.items()
                  for key in array_keys(name, state.kind)}
        arrays.update({f"extra/{name}": self._store.layout(f"extra/{name}")
                       for name in self._extras})
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "complete": True,
                "created_by": f"ooc {__version__}",
                "splits": {name: s.describe() for name, s in self._splits.items()},
                **self._meta, "extras": self._extras, "arrays": arrays}

    def commit(self) -> Path:
        """Make every byte durable, then publish the dataset at ``path``."""
        self._check_open()
        try:
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

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self.path} is already committed or aborted.")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def create(path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
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
    **options
        Backend options.  HDF5: ``compression`` (``"gzip"``, ``"lzf"``,
        ``"zstd"``, ``"blosc"``) and ``compression_level``.
    """
    return DatasetWriter(path, format, overwrite=overwrite, **options)
