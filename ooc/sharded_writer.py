"""Writing a sharded dataset: parts written by any process, committed by one.

:func:`create_sharded` makes the dataset's temporary directory; its
:meth:`~ShardedWriter.part` hands out a picklable :class:`PartTarget` that
any process (a pool worker, a Dask task) turns into an ordinary
:class:`~ooc.writer.DatasetWriter` of one split, committed atomically on
its own.  A part written twice (a task retried after its worker died) is
replaced whole.  :meth:`~ShardedWriter.commit` opens every part, checks it
belongs to this write and that none is missing, writes the manifest last
and publishes the directory with one rename (format: :mod:`ooc.format`,
"Sharded layout").  To a URL (object storage), each part is uploaded by
the process that wrote it and the manifest last (:class:`ooc.store.remote.
remote_writer.RemoteParts`).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ChunkError
from .format import FORMAT_NAME, SHARDED_VERSION, SHARDS_MANIFEST, TMP_MARKER, dump_manifest
from .reader import add_counts
from .store import BACKENDS, open_store
from .store._atomic import (
    check_output,
    fsync_path,
    hold_lock,
    publish,
    remove,
    remove_dead_temporaries,
    temporary_path,
)
from .store._disk import writing
from .store.remote import is_url, local_path
from .writer import DatasetWriter, Metadata, Transaction, check_split_name

_PART_NAME = re.compile(r"part-(?P<index>[0-9]{5,})(?:\.h5)?\Z")


def _part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}" + (".h5" if fmt == "hdf5" else "")


@dataclass(frozen=True)
class PartTarget:
    """Where part ``index`` of ``split`` goes; send it to the process that writes it."""

    root: Path
    format: str
    split: str
    index: int
    dataset_id: str
    options: tuple[tuple[str, Any], ...] = ()
    url: str | None = None  # the dataset's URL when it is written to object storage
    storage_options: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """The part's path in the dataset, ``<split>/part-NNNNN[.h5]``."""
        return f"{self.split}/{_part_name(self.index, self.format)}"

    @property
    def path(self) -> Path:
        return self.root / self.name

    def create(self) -> DatasetWriter:
        """A writer of this part: append the rows of ``self.split``, then commit."""
        if self.url is not None:
            from .remote_writer import UploadingWriter

            writer: DatasetWriter = UploadingWriter(
                f"{self.url}/{self.name}", self.format, dict(self.storage_options),
                **dict(self.options))
        else:
            with writing(self.path.parent):
                self.path.parent.mkdir(exist_ok=True)
            writer = DatasetWriter(self.path, self.format, overwrite=True, **dict(self.options))
        writer.set_metadata(config={"part_of": self.dataset_id, "split": self.split,
                                    "index": self.index})
        return writer


class LocalParts:
    """Where a sharded write's parts go on a filesystem: a temporary directory
    beside ``path``, published by one rename."""

    def __init__(self, path: Path, overwrite: bool) -> None:
        check_output(path, overwrite)
        remove_dead_temporaries(path)
        self.path, self._overwrite = path, overwrite
        self.root = temporary_path(path)
        with writing(self.root):
            self.root.mkdir()
        self._lock: int | None = hold_lock(self.root)  # tells later writers it is in use

    def meta_path(self, format: str) -> Path:
        """Where the meta part is written."""
        return self.root / ("meta.h5" if format == "hdf5" else "meta")

    def add_meta(self, path: Path) -> None:
        """The meta part, committed at :meth:`meta_path`, is in place already."""

    def listing(self) -> dict[str, list[str]]:
        """Each split directory's entries (leftovers of a writer that died removed)."""
        found: dict[str, list[str]] = {}
        for directory in self.root.iterdir():
            if directory.is_dir() and directory.name != "meta" and (
                    TMP_MARKER not in directory.name):
                for leftover in directory.glob(f"*{TMP_MARKER}*"):
                    remove(leftover)  # of a task that died while writing: its retry wrote it
                found[directory.name] = [p.name for p in directory.iterdir()]
        return found

    def manifest_of(self, name: str) -> dict[str, Any]:
        """The manifest of the committed part ``name``, checked as on open."""
        return _manifest_of(self.root / name)

    def publish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest last, then rename the directory to ``path``."""
        path = self.root / SHARDS_MANIFEST
        with writing(path):
            with open(path, "w") as f:
                f.write(dump_manifest(manifest))
                f.flush()
                os.fsync(f.fileno())
            for directory in (*(self.root / s for s in manifest["splits"]), self.root):
                fsync_path(directory)
        check_output(self.path, self._overwrite)  # again: something may have come since
        publish(self.root, self.path)

    def abort(self) -> None:
        remove(self.root)

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


class ShardedWriter(Transaction):
    """Collects parts written anywhere into one dataset; see :func:`create_sharded`."""

    def __init__(self, path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                 storage_options: dict[str, Any] | None = None, **options: Any) -> None:
        if format not in BACKENDS:
            raise ValueError(f"format must be one of {sorted(BACKENDS)}; got {format!r}.")
        self.format, self.dataset_id = format, secrets.token_hex(16)
        self._url = str(path).rstrip("/") if is_url(path) else None
        self._storage_options = tuple(sorted((storage_options or {}).items()))
        self._dest: Any
        if self._url is not None:
            from .remote_writer import RemoteParts

            self._dest = RemoteParts(self._url, overwrite, self.dataset_id, storage_options)
        else:
            self._dest = LocalParts(local_path(path), overwrite)
        self.path: Path | str = self._dest.path  # the URL's text for a URL
        self._options = tuple(sorted(options.items()))
        self._meta = Metadata()
        self._extras: DatasetWriter | None = None
        self._splits: list[str] = []  # in the order parts were first asked for
        self._closed = False

    def part(self, split: str, index: int) -> PartTarget:
        """The target of part ``index`` (0, 1, ...) of ``split``; parts are read in index order."""
        self._check_open()
        check_split_name(split)
        if split == "meta":
            raise ChunkError("a sharded dataset keeps its extras under 'meta'; name the split "
                             "otherwise.")
        if index < 0:
            raise ValueError(f"part indices start at 0; got {index}.")
        if split not in self._splits:
            self._splits.append(split)
        return PartTarget(self._dest.root, self.format, split, index, self.dataset_id,
                          self._options, self._url, self._storage_options)

    def set_metadata(self, **metadata: Any) -> None:
        """As :meth:`ooc.writer.DatasetWriter.set_metadata`."""
        self._meta.set(**metadata)

    def put_array(self, name: str, array: Any) -> None:
        """As :meth:`ooc.writer.DatasetWriter.put_array` (kept in the meta part)."""
        self._check_open()
        if self._extras is None:
            self._extras = DatasetWriter(self._dest.meta_path(self.format), self.format,
                                         **dict(self._options))
            self._extras.set_metadata(config={"part_of": self.dataset_id})
        self._extras.put_array(name, array)

    def commit(self) -> Path | str:  # type: ignore[override]
        """Check the parts, write the manifest, publish the dataset at ``path``."""
        self._check_open()
        try:
            listing = self._dest.listing()
            splits = {name: self._split(name, listing[name])
                      for name in self._split_names(listing)}
            self._meta.check({name: (len(info["label_counts"]), info["x"]["n_cols"])
                              for name, info in splits.items()})
            meta, extras = None, {}
            if self._extras is not None:
                path = self._extras.commit()
                manifest = _manifest_of(path)
                self._dest.add_meta(path)
                meta = {"path": path.name, "manifest": manifest["checksum"]}
                extras = manifest["extras"]
            manifest = {"format": FORMAT_NAME, "format_version": SHARDED_VERSION,
                        "layout": "sharded", "complete": True,
                        "created_by": f"ooc {__version__}", "dataset_id": self.dataset_id,
                        "splits": splits, **self._meta.fields(),
                        "extras": extras, "meta": meta}
            self._dest.publish(manifest)
        except BaseException:
            self.abort()
            raise
        self._release()
        return self.path

    def _split_names(self, listing: dict[str, list[str]]) -> list[str]:
        return [*(s for s in self._splits if s in listing),
                *sorted(s for s in listing if s not in self._splits)]

    def _split(self, name: str, entries: list[str]) -> dict[str, Any]:
        """The manifest entry of one split, from its parts (each opened and checked)."""
        found: dict[int, str] = {}
        for entry in entries:
            match = _PART_NAME.match(entry)
            if match is None:
                raise ChunkError(f"{self.path}/{name}/{entry}: not a part of a sharded "
                                 "dataset; only parts are written into its directory.")
            found[int(match["index"])] = f"{name}/{entry}"
        missing = sorted(set(range(max(found, default=-1) + 1)) - set(found))
        if missing or not found:
            raise ChunkError(
                f"split {name!r}: part {missing[0] if missing else 0} was never written "
                f"(found parts {sorted(found)}). Write every part before committing.")
        split: dict[str, Any] = {}
        for index in sorted(found):
            split = _add_part(split, name, index, found[index],
                              self._dest.manifest_of(found[index]), self)
        return split

    def abort(self) -> None:
        """Drop every part written so far; ``path`` is left as it was."""
        if not self._closed:
            if self._extras is not None:
                self._extras.abort()
            self._dest.abort()
            self._release()

    def _release(self) -> None:
        self._closed = True
        self._dest.release()


def _manifest_of(path: Path) -> dict[str, Any]:
    """The manifest of the committed dataset at ``path``, checked as on open."""
    part = open_store(path, verify="never")
    try:
        return part.manifest
    finally:
        part.close()


def _add_part(entry: dict[str, Any], split: str, index: int, name: str,
              manifest: dict[str, Any], writer: ShardedWriter) -> dict[str, Any]:
    """``entry`` (a split's manifest entry, ``{}`` at first) with one more part."""
    config = manifest.get("config") or {}
    if (config.get("part_of"), config.get("split"), config.get("index")) != (
            writer.dataset_id, split, index) or set(manifest["splits"]) != {split}:
        raise ChunkError(f"{writer.path}/{name}: this is not part {index} of split {split!r} "
                         f"of this write (it says {config}, splits "
                         f"{sorted(manifest['splits'])}).")
    info = manifest["splits"][split]
    x = info["x"]
    if entry and {k: v for k, v in x.items() if k != "nnz"} != {
            k: v for k, v in entry["x"].items() if k != "nnz"}:
        raise ChunkError(f"{writer.path}/{name}: x is {x}; the parts before it hold "
                         f"{entry['x']}. Every part of a split has the same kind, dtype and "
                         "columns.")
    nnz = int(x.get("nnz", 0))
    ref = {"path": name, "n_rows": info["n_rows"],
           "nnz": nnz, "manifest": manifest["checksum"]}
    if not entry:
        return {**info, "parts": [ref]}
    counts = add_counts(np.asarray(entry["label_counts"], np.int64),
                        np.asarray(info["label_counts"], np.int64))
    merged_x = {**entry["x"], **({"nnz": entry["x"]["nnz"] + nnz} if "nnz" in x else {})}
    return {**entry, "n_rows": entry["n_rows"] + info["n_rows"], "x": merged_x,
            "label_counts": counts.tolist(), "parts": [*entry["parts"], ref]}


def create_sharded(path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                   storage_options: dict[str, Any] | None = None,
                   **options: Any) -> ShardedWriter:
    """Start writing a sharded dataset at ``path`` (a directory), part by part.

    Parameters are those of :func:`ooc.create` (without the shuffle: parts
    are stored in index order).  ``format`` is the backend of the parts.
    Give each process that writes a part its :class:`PartTarget`
    (``writer.part(split, index)``, picklable); it writes with
    ``with target.create() as w: w.append(target.split, x, y, row_ids)``.
    The directory, like ``path``'s temporary, must be one that every
    writing process reaches (a shared filesystem on a cluster), or ``path``
    is a URL (``s3://bucket/ds``, any fsspec URL; ``storage_options`` go to
    fsspec): then each process writes its part on its local disk and
    uploads it at the part's commit, and the commit uploads the manifest
    last (:mod:`ooc.remote_writer`).
    :meth:`ShardedWriter.commit` (the ``with`` block's end) publishes the
    dataset once every part from 0 to the highest index of each split is
    there; :func:`ooc.open` reads it as one dataset.
    """
    return ShardedWriter(path, format, overwrite=overwrite, storage_options=storage_options,
                         **options)
