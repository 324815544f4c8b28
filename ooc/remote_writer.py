"""Writing a sharded dataset straight to object storage, where nothing is renamed.

The dataset is written in place under its URL (format: :mod:`ooc.format`,
"Sharded layout"): ``ooc-writing.json`` with the write's id first; then
every part, written on the local disk of the process that makes it and
uploaded whole at its commit (:class:`UploadingWriter`: an HDF5 part is one
object, an npy part's manifest goes last), replacing an upload of the same
part by a retried task; the meta part; and the manifest last.  Readers see
no dataset until the manifest is there, and each part's manifest checksum
in it makes a part replaced since (by a task that ran twice, or another
write) an error on read, never other rows.

Two writes of one URL at once are not supported: the second replaces the
first's unfinished write, and the first then finds parts that are not its
own, or its marker gone, and stops without a manifest.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from .errors import ChunkError, DatasetNotFoundError, OutputConflictError, StorageError
from .format import MANIFEST_FILENAME, SHARDS_MANIFEST, WRITING_MARKER, dump_manifest, load_manifest
from .store._atomic import remove, remove_dead_temporaries
from .store.remote import (
    cache_root,
    clear_output,
    filesystem,
    put,
    remove_dataset,
    storage_errors,
    url_key,
)
from .writer import DatasetWriter


class UploadingWriter(DatasetWriter):
    """A writer of one part at ``url``: written in the local cache, uploaded at commit."""

    def __init__(self, url: str, format: str, storage_options: dict[str, Any] | None = None,
                 **options: Any) -> None:
        self._url = url
        self._fs, self._root = filesystem(url, storage_options)
        # the same local name for every try of this part: a retry removes a dead try's leftovers
        local = cache_root() / "parts" / url_key(url) / url.rsplit("/", 1)[-1]
        local.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(local, format, overwrite=True, **options)

    def commit(self) -> Path:
        path = super().commit()
        try:
            with storage_errors(self._url):
                remove_dataset(self._fs, self._root)  # an earlier try's upload, whole or not
                put(self._fs, path, self._root)
        finally:
            remove(path)
        return path


def _remove_dead_stagings(parent: Path) -> None:
    """Delete earlier writes' staging folders of this URL that hold nothing but a dead
    writer's temporary (a killed run's); any other content is left to its writer."""
    if not parent.is_dir():
        return
    for other in parent.iterdir():
        if [t for name in ("meta.h5", "meta") for t in remove_dead_temporaries(other / name)]:
            with contextlib.suppress(OSError):
                other.rmdir()  # only if that was all (a live writer's new folder stays)


class RemoteParts:
    """Where a sharded write's parts go at a URL (see :class:`ooc.sharded_writer.LocalParts`
    for the same on a filesystem)."""

    def __init__(self, url: str, overwrite: bool, dataset_id: str,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.path, self._dataset_id = url, dataset_id
        self._fs, self._root = filesystem(url, storage_options)
        with storage_errors(url):
            clear_output(self._fs, self._root, url, overwrite)
            self._fs.pipe_file(self._marker, json.dumps({"dataset_id": dataset_id}).encode())
        self.root = cache_root() / "staging" / url_key(url) / dataset_id  # the meta part
        _remove_dead_stagings(self.root.parent)

    @property
    def _marker(self) -> str:
        return f"{self._root}/{WRITING_MARKER}"

    def meta_path(self, format: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / ("meta.h5" if format == "hdf5" else "meta")

    def add_meta(self, path: Path) -> None:
        with storage_errors(self.path):
            put(self._fs, path, f"{self._root}/{path.name}")

    def listing(self) -> dict[str, list[str]]:
        """Each split's entries: ``part-00000.h5`` objects, ``part-00000`` npy prefixes."""
        self._fs.invalidate_cache(self._root)  # parts were uploaded by other processes
        found: dict[str, set[str]] = {}
        with storage_errors(self.path):
            names = self._fs.find(self._root)
        for name in names:
            split, _, rest = name[len(self._root) + 1:].partition("/")
            if rest:
                found.setdefault(split, set()).add(rest.split("/", 1)[0])
        return {split: sorted(entries) for split, entries in found.items()}

    def manifest_of(self, name: str) -> dict[str, Any]:
        """The checked manifest of part ``name`` as uploaded."""
        where = f"{self.path}/{name}"
        with storage_errors(where):
            return self._manifest_of(name, where)

    def _manifest_of(self, name: str, where: str) -> dict[str, Any]:
        if name.endswith(".h5"):
            import h5py

            from .store.hdf5 import read_manifest

            with self._fs.open(f"{self._root}/{name}", "rb", block_size=1 << 20) as f, \
                    h5py.File(f, "r") as h5:
                return read_manifest(h5, where)
        try:
            text = self._fs.cat_file(f"{self._root}/{name}/{MANIFEST_FILENAME}")
        except FileNotFoundError:
            raise ChunkError(f"{where}: this part was not uploaded whole (it has no "
                             f"{MANIFEST_FILENAME}); write it again.") from None
        return load_manifest(text, where)

    def publish(self, manifest: dict[str, Any]) -> None:
        """Upload the manifest, if this write still owns the URL; then drop the marker."""
        with storage_errors(self.path):
            self._publish(manifest)
        remove(self.root)

    def _publish(self, manifest: dict[str, Any]) -> None:
        if not self._owned():
            raise OutputConflictError(
                f"{self.path}: another write of this URL started after this one and replaced "
                "it; this write stops without a manifest. Write a URL from one run at a time.")
        self._fs.pipe_file(f"{self._root}/{SHARDS_MANIFEST}", dump_manifest(manifest).encode())
        self._fs.rm_file(self._marker)

    def _owned(self) -> bool:
        try:
            marker = json.loads(self._fs.cat_file(self._marker))
        except (FileNotFoundError, DatasetNotFoundError, ValueError):
            return False
        return isinstance(marker, dict) and marker.get("dataset_id") == self._dataset_id

    def abort(self) -> None:
        """Delete what this write uploaded, unless another write has taken the URL since."""
        try:
            with storage_errors(self.path):
                if self._owned():
                    remove_dataset(self._fs, self._root, "directory")
        except StorageError:
            pass  # the error that stopped the write says more; the next write replaces this
        finally:
            remove(self.root)

    def release(self) -> None:
        pass
