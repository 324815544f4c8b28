"""Writing a sharded dataset: parts written by any process, committed by one.

:func:`create_sharded` makes the dataset's temporary directory; its
:meth:`~ShardedWriter.part` hands out a picklable :class:`PartTarget` that
any process (a pool worker, a Dask task) turns into an ordinary
:class:`~ooc.writer.DatasetWriter` of one split, committed atomically on
its own.  A part written twice (a task retried after its worker died) is
replaced whole.  :meth:`~ShardedWriter.commit` opens every part, checks it
belongs to this write and that none is missing, writes the manifest last
and publishes the directory with one rename (format: :mod:`ooc.format`,
"Sharded layout").
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

    @property
    def path(self) -> Path:
        return self.root / self.split / _part_name(self.index, self.format)

    def create(self) -> DatasetWriter:
        """A writer of this part: append the rows of ``self.split``, then commit."""
        with writing(self.path.parent):
            self.path.parent.mkdir(exist_ok=True)
        writer = DatasetWriter(self.path, self.format, overwrite=True, **dict(self.options))
        writer.set_metadata(config={"part_of": self.dataset_id, "split": self.split,
                                    "index": self.index})
        return writer


class ShardedWriter(Transaction):
    """Collects parts written anywhere into one dataset; see :func:`create_sharded`."""

    def __init__(self, path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                 **options: Any) -> None:
        if format not in BACKENDS:
            raise ValueError(f"format must be one of {sorted(BACKENDS)}; got {format!r}.")
        self.path, self.format, self._overwrite = Path(path), format, overwrite
        check_output(self.path, overwrite)
        remove_dead_temporaries(self.path)
        self._tmp = temporary_path(self.path)
        with writing(self._tmp):
            self._tmp.mkdir()
        self._lock = hold_lock(self._tmp)  # tells later writers this temporary is in use
        self.dataset_id = secrets.token_hex(16)
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
        return PartTarget(self._tmp, self.format, split, index, self.dataset_id, self._options)

    def set_metadata(self, **metadata: Any) -> None:
        """As :meth:`ooc.writer.DatasetWriter.set_metadata`."""
        self._meta.set(**metadata)

    def put_array(self, name: str, array: Any) -> None:
        """As :meth:`ooc.writer.DatasetWriter.put_array` (kept in the meta part)."""
        self._check_open()
        if self._extras is None:
            meta = self._tmp / ("meta.h5" if self.format == "hdf5" else "meta")
            self._extras = DatasetWriter(meta, self.format, **dict(self._options))
            self._extras.set_metadata(config={"part_of": self.dataset_id})
        self._extras.put_array(name, array)

    def commit(self) -> Path:
        """Check the parts, write the manifest, publish the dataset at ``path``."""
        self._check_open()
        try:
            splits = {name: self._split(name) for name in self._split_names()}
            self._meta.check({name: (len(info["label_counts"]), info["x"]["n_cols"])
                              for name, info in splits.items()})
            meta, extras = None, {}
            if self._extras is not None:
                path = self._extras.commit()
                manifest = _manifest_of(path)
                meta = {"path": path.relative_to(self._tmp).as_posix(),
                        "manifest": manifest["checksum"]}
                extras = manifest["extras"]
            manifest = {"format": FORMAT_NAME, "format_version": SHARDED_VERSION,
                        "layout": "sharded", "complete": True,
                        "created_by": f"ooc {__version__}", "dataset_id": self.dataset_id,
                        "splits": splits, **self._meta.fields(),
                        "extras": extras, "meta": meta}
            self._write_manifest(manifest)
            check_output(self.path, self._overwrite)  # again: something may have come since
            publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._release()
        return self.path

    def _split_names(self) -> list[str]:
        found = sorted(p.name for p in self._tmp.iterdir()
                       if p.is_dir() and p.name != "meta" and TMP_MARKER not in p.name)
        return [*(s for s in self._splits if s in found), *(s for s in found
                                                            if s not in self._splits)]

    def _split(self, name: str) -> dict[str, Any]:
        """The manifest entry of one split, from its parts (each opened and checked)."""
        directory = self._tmp / name
        for leftover in directory.glob(f"*{TMP_MARKER}*"):
            remove(leftover)  # of a task that died while writing: its retry wrote the part
        found: dict[int, Path] = {}
        for path in directory.iterdir():
            match = _PART_NAME.match(path.name)
            if match is None:
                raise ChunkError(f"{path}: not a part of a sharded dataset; only parts are "
                                 "written into its directory.")
            found[int(match["index"])] = path
        missing = sorted(set(range(max(found, default=-1) + 1)) - set(found))
        if missing or not found:
            raise ChunkError(
                f"split {name!r}: part {missing[0] if missing else 0} was never written "
                f"(found parts {sorted(found)}). Write every part before committing.")
        entry: dict[str, Any] = {}
        for index in sorted(found):
            entry = _add_part(entry, name, index, found[index], _manifest_of(found[index]), self)
        return entry

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        path = self._tmp / SHARDS_MANIFEST
        with writing(path):
            with open(path, "w") as f:
                f.write(dump_manifest(manifest))
                f.flush()
                os.fsync(f.fileno())
            for directory in (*(self._tmp / s for s in manifest["splits"]), self._tmp):
                fsync_path(directory)

    def abort(self) -> None:
        """Drop every part written so far; ``path`` is left as it was."""
        if not self._closed:
            if self._extras is not None:
                self._extras.abort()
            remove(self._tmp)
            self._release()

    def _release(self) -> None:
        self._closed = True
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _manifest_of(path: Path) -> dict[str, Any]:
    """The manifest of the committed dataset at ``path``, checked as on open."""
    part = open_store(path, verify="never")
    try:
        return part.manifest
    finally:
        part.close()


def _add_part(entry: dict[str, Any], split: str, index: int, path: Path,
              manifest: dict[str, Any], writer: ShardedWriter) -> dict[str, Any]:
    """``entry`` (a split's manifest entry, ``{}`` at first) with one more part."""
    config = manifest.get("config") or {}
    if (config.get("part_of"), config.get("split"), config.get("index")) != (
            writer.dataset_id, split, index) or set(manifest["splits"]) != {split}:
        raise ChunkError(f"{path}: this is not part {index} of split {split!r} of this write "
                         f"(it says {config}, splits {sorted(manifest['splits'])}).")
    info = manifest["splits"][split]
    x = info["x"]
    if entry and {k: v for k, v in x.items() if k != "nnz"} != {
            k: v for k, v in entry["x"].items() if k != "nnz"}:
        raise ChunkError(f"{path}: x is {x}; the parts before it hold {entry['x']}. Every "
                         "part of a split has the same kind, dtype and columns.")
    nnz = int(x.get("nnz", 0))
    ref = {"path": path.relative_to(writer._tmp).as_posix(), "n_rows": info["n_rows"],
           "nnz": nnz, "manifest": manifest["checksum"]}
    if not entry:
        return {**info, "parts": [ref]}
    counts = add_counts(np.asarray(entry["label_counts"], np.int64),
                        np.asarray(info["label_counts"], np.int64))
    merged_x = {**entry["x"], **({"nnz": entry["x"]["nnz"] + nnz} if "nnz" in x else {})}
    return {**entry, "n_rows": entry["n_rows"] + info["n_rows"], "x": merged_x,
            "label_counts": counts.tolist(), "parts": [*entry["parts"], ref]}


def create_sharded(path: str | Path, format: str = "hdf5", *, overwrite: bool = False,
                   **options: Any) -> ShardedWriter:
    """Start writing a sharded dataset at ``path`` (a directory), part by part.

    Parameters are those of :func:`ooc.create` (without the shuffle: parts
    are stored in index order).  ``format`` is the backend of the parts.
    Give each process that writes a part its :class:`PartTarget`
    (``writer.part(split, index)``, picklable); it writes with
    ``with target.create() as w: w.append(target.split, x, y, row_ids)``.
    The directory, like ``path``'s temporary, must be one that every
    writing process reaches (a shared filesystem on a cluster).
    :meth:`ShardedWriter.commit` (the ``with`` block's end) publishes the
    dataset once every part from 0 to the highest index of each split is
    there; :func:`ooc.open` reads it as one dataset.
    """
    return ShardedWriter(path, format, overwrite=overwrite, **options)
