"""Datasets in object storage: any fsspec URL (``s3://``, ``gs://``, ``memory://``...).

Reading (:func:`open_remote`): a dataset's files are fetched into a local
cache directory and opened there, so every byte is checked as in a local
dataset.  The cache keeps one directory per URL and manifest checksum
(``<cache>/<hash of the URL>/<checksum>/``), so a dataset replaced at its
URL is fetched anew, never mixed with the old one.  Every file is
downloaded under a temporary name and renamed whole: a reader killed
mid-download leaves nothing that looks fetched.  The parts of a sharded
dataset are fetched when first read, so a reader of a few parts fetches
only those.  ooc never deletes what it fetched on its own
(:func:`clear_fetched`, ``ooc cache --clear``).

Writing (:func:`upload`): a committed local dataset is copied to a URL,
its manifest last, so that a reader finds no dataset or all of it.  An ooc
dataset already there is removed first (with ``overwrite``), manifest
first; anything else there is refused and left alone.  A sharded dataset
can also be written part by part straight to its URL
(:mod:`ooc.remote_writer`).

fsspec and the store's own package (``s3fs``, ``gcsfs``) are imported only
here: ``pip install 'ooc[s3]'``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    IncompleteDatasetError,
    OocError,
    OutputConflictError,
    StorageError,
)
from ..format import (
    FORMAT_NAME,
    HDF5_SIGNATURE,
    MANIFEST_FILENAME,
    SHARDS_MANIFEST,
    TMP_MARKER,
    WRITING_MARKER,
    array_specs,
    load_manifest,
)
from ._atomic import remove
from .base import StoreReader, Verify

UPLOAD_BLOCK = 8 << 20  # bytes an upload holds in memory (S3's parts are 5 MiB or more)


def is_url(path: Any) -> bool:
    """Whether ``path`` names a dataset through fsspec (``file://`` is a local path)."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


def local_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a local path (a ``file://`` URL without its scheme)."""
    text = os.fspath(path)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local cache: ``cache_dir``, else ``$OOC_CACHE_DIR``, else ``~/.cache/ooc``."""
    chosen = cache_dir or os.environ.get("OOC_CACHE_DIR")
    return Path(chosen) if chosen else Path.home() / ".cache" / "ooc"


def url_key(url: str) -> str:
    """A directory name for ``url`` in the cache."""
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


_URL_KEY = re.compile(r"[0-9a-f]{16}\Z")


def fetched(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The cache's directories of fetched datasets (one per URL); not the staging copies
    and parts of writes in progress, nor anything ooc did not name."""
    root = cache_root(cache_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _URL_KEY.match(p.name))


def clear_fetched(cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Delete every fetched dataset from the cache; the bytes freed.  Safe while readers
    have them open: what they have open stays readable, what they read next is fetched
    again."""
    from .._report import bytes_on_disk

    freed = 0
    for directory in fetched(cache_dir):
        freed += bytes_on_disk(directory)
        remove(directory)
    return freed


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Failures of the store (credentials, network, permissions) as :class:`StorageError`."""
    try:
        yield
    except OocError:
        raise
    except Exception as exc:  # botocore, aiohttp, gcsfs... each raise their own kinds
        raise StorageError(
            f"{url}: the object store failed ({type(exc).__name__}: {exc}). Check the "
            "credentials (AWS_* variables, or storage_options), the endpoint and that the "
            "bucket exists.") from exc


def filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """fsspec's filesystem for ``url`` and the path in it."""
    try:
        import fsspec
    except ImportError:
        raise OocError(f"{url}: reading and writing URLs needs fsspec and the store's package "
                       "(pip install 'ooc[s3]' for s3://; gcsfs for gs://).") from None
    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise OocError(f"{url}: fsspec cannot open this URL ({exc}).") from None
    return fs, root.rstrip("/")


def _info(fs: Any, path: str) -> dict[str, Any] | None:
    """fsspec's ``info`` of ``path``, None where nothing is.  Unlike fsspec's ``isfile``
    and ``exists``, which answer False to any error, a store's failure raises."""
    try:
        return fs.info(path)
    except FileNotFoundError:
        return None


def kind(fs: Any, path: str) -> str | None:
    """``"file"``, ``"directory"`` or None (nothing there); see :func:`_info`."""
    info = _info(fs, path)
    return None if info is None else str(info["type"])


class RemoteFiles:
    """Fetches the files of one remote dataset into its local cache directory.

    Picklable (a spawned worker fetches what it reads).
    """

    def __init__(self, fs: Any, root: str, local: Path) -> None:
        self.fs, self.root, self.local = fs, root, local

    def fetch(self, rel: str) -> Path:
        """Bring ``rel`` (an HDF5 file, or an npy dataset directory) into the cache."""
        dest = self.local / rel
        if dest.exists():
            return dest
        remote = f"{self.root}/{rel}" if rel else self.root
        dest.parent.mkdir(parents=True, exist_ok=True)
        with storage_errors(remote):
            if kind(self.fs, remote) == "file":
                _download(self.fs, remote, dest)
            else:
                self._fetch_npy(remote, dest)
        return dest

    def _fetch_npy(self, remote: str, dest: Path) -> None:
        where = f"{remote}/{MANIFEST_FILENAME}"
        text = _cat(self.fs, where)
        manifest = load_manifest(text, where)
        array_specs(manifest, where)  # array keys checked: they become paths below
        tmp = dest.with_name(f"{dest.name}{TMP_MARKER}fetch-{uuid.uuid4().hex}")
        try:
            for key in manifest["arrays"]:
                for name in (f"{key}.npy", f"{key}.crc32c.npy"):
                    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                    _download(self.fs, f"{remote}/{name}", tmp / name)
            (tmp / MANIFEST_FILENAME).write_bytes(text)  # the bytes checked above
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.exists():  # else another process fetched it first
                    raise
        finally:
            remove(tmp)


def _cat(fs: Any, remote: str) -> bytes:
    try:
        return fs.cat_file(remote)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{remote}: no such file (the dataset was removed or "
                                   "replaced while it was read?).") from None


def _download(fs: Any, remote: str, dest: Path) -> None:
    tmp = dest.with_name(f"{dest.name}{TMP_MARKER}fetch-{uuid.uuid4().hex}")
    try:
        fs.get_file(remote, str(tmp))
        os.replace(tmp, dest)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{remote}: no such file (the dataset was removed or "
                                   "replaced while it was read?).") from None
    finally:
        tmp.unlink(missing_ok=True)


def open_remote(url: str, verify: Verify = "once", cache_dir: str | os.PathLike[str] | None = None,
                storage_options: dict[str, Any] | None = None) -> StoreReader:
    """Open the dataset at ``url`` from the local cache, fetching what it lacks."""
    with storage_errors(url):
        return _open_remote(url, verify, cache_dir, storage_options)


def _open_remote(url: str, verify: Verify, cache_dir: str | os.PathLike[str] | None,
                 storage_options: dict[str, Any] | None) -> StoreReader:
    from . import open_store
    from .sharded import ShardedReader

    fs, root = filesystem(url, storage_options)
    base = cache_root(cache_dir) / url_key(url)
    name = root.rsplit("/", 1)[-1] or "dataset"
    info = _info(fs, root)
    found = None if info is None else info["type"]
    if info is not None and found == "file":  # one HDF5 file, keyed by the object's tag
        tag = str(info.get("ETag") or info.get("etag") or info.get("mtime") or "")
        key = hashlib.sha256(f"{tag}:{info.get('size')}".encode()).hexdigest()[:16]
        local = RemoteFiles(fs, root.rsplit("/", 1)[0], base / key).fetch(name)
        return open_store(local, verify)
    for manifest_name in (SHARDS_MANIFEST, MANIFEST_FILENAME):
        if found and kind(fs, f"{root}/{manifest_name}") == "file":
            break
    else:
        if found and kind(fs, f"{root}/{WRITING_MARKER}") == "file":
            raise IncompleteDatasetError(
                f"{url}: a sharded write to this URL has not finished, or was stopped "
                f"({WRITING_MARKER} is here, no {SHARDS_MANIFEST}). Open it once the write "
                "is done; a stopped one is replaced by the next write of this URL.")
        raise DatasetNotFoundError(f"{url}: no ooc dataset here (no {SHARDS_MANIFEST}, no "
                                   f"{MANIFEST_FILENAME}, not a file).")
    text = _cat(fs, f"{root}/{manifest_name}")
    checksum = load_manifest(text, f"{url}/{manifest_name}")["checksum"].split(":")[-1]
    if manifest_name == MANIFEST_FILENAME:
        return open_store(RemoteFiles(fs, root, base / checksum / name).fetch(""), verify)
    local = base / checksum / name
    if not (local / SHARDS_MANIFEST).exists():
        local.mkdir(parents=True, exist_ok=True)
        tmp = local / f"{SHARDS_MANIFEST}{TMP_MARKER}{uuid.uuid4().hex}"
        tmp.write_bytes(text)
        os.replace(tmp, local / SHARDS_MANIFEST)
    return ShardedReader(local, verify, fetch=RemoteFiles(fs, root, local).fetch)


def upload(local: Path, url: str, *, overwrite: bool = False,
           storage_options: dict[str, Any] | None = None) -> None:
    """Copy the committed dataset at ``local`` to ``url``, its manifest last."""
    fs, root = filesystem(url, storage_options)
    with storage_errors(url):
        clear_output(fs, root, url, overwrite)
        put(fs, local, root)


def put(fs: Any, local: Path, root: str) -> None:
    """Upload the committed dataset at ``local`` to ``root`` (nothing there), manifest last."""
    if local.is_file():  # one object: an upload is all or nothing
        _put_file(fs, local, root)
        return
    manifest = SHARDS_MANIFEST if (local / SHARDS_MANIFEST).exists() else MANIFEST_FILENAME
    files = sorted(p for p in local.rglob("*") if p.is_file() and p != local / manifest)
    for path in files:
        _put_file(fs, path, f"{root}/{path.relative_to(local).as_posix()}")
    _put_file(fs, local / manifest, f"{root}/{manifest}")


def _put_file(fs: Any, local: Path, remote: str) -> None:
    # streamed in blocks of UPLOAD_BLOCK: fsspec's put_file reads a file of up to twice
    # its chunk (100 MiB for s3fs) whole, and sends larger ones 10 chunks at a time
    with open(local, "rb") as src, fs.open(remote, "wb", block_size=UPLOAD_BLOCK) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def url_bytes(url: str, storage_options: dict[str, Any] | None = None) -> int:
    """The bytes stored under ``url``."""
    fs, root = filesystem(url, storage_options)
    with storage_errors(url):
        return int(fs.du(root))


def check_remote_output(url: str, overwrite: bool,
                        storage_options: dict[str, Any] | None = None) -> None:
    """Raise unless a dataset may be uploaded to ``url`` (as :func:`upload` checks)."""
    fs, root = filesystem(url, storage_options)
    with storage_errors(url):
        clear_output(fs, root, url, overwrite, clear=False)


def clear_output(fs: Any, root: str, url: str, overwrite: bool, clear: bool = True) -> None:
    """Refuse what is not ooc's at ``root``; remove a dataset with ``overwrite``, and an
    unfinished sharded write (``ooc-writing.json``, no manifest) always."""
    fs.invalidate_cache(root)  # another process may have written there since
    found = kind(fs, root)
    if found is None:
        return
    held = _holds_dataset(fs, root, found)
    if held is None:
        raise OutputConflictError(
            f"{url}: something that is not an ooc dataset is here. ooc replaces only its own "
            "datasets, even with --overwrite (overwrite=True). Choose another URL.")
    if held == "dataset" and not overwrite:
        raise DatasetExistsError(f"{url}: a dataset already exists here. Pass --overwrite "
                                 "(overwrite=True) to replace it, or choose another URL.")
    if clear:
        remove_dataset(fs, root, found)


def remove_dataset(fs: Any, root: str, found: str | None = None) -> None:
    """Delete the dataset or part at ``root`` (its :func:`kind`, if known), its manifest
    first (then no reader takes what is left for a dataset)."""
    found = kind(fs, root) if found is None else found
    if found == "directory":
        for manifest in (SHARDS_MANIFEST, MANIFEST_FILENAME):
            with suppress(FileNotFoundError):
                fs.rm_file(f"{root}/{manifest}")
        fs.rm(root, recursive=True)
    elif found == "file":
        fs.rm_file(root)


def _holds_dataset(fs: Any, root: str, found: str) -> str | None:
    """``"dataset"`` if ``root`` (of :func:`kind` ``found``) is an ooc dataset and nothing
    else, ``"unfinished"`` if it holds an unfinished sharded write, else None."""
    if found == "file":
        if fs.cat_file(root, start=0, end=8) != HDF5_SIGNATURE:
            return None
        import h5py

        from .hdf5 import format_name

        try:
            with fs.open(root, "rb") as f, h5py.File(f, "r") as h5:
                return "dataset" if format_name(h5) == FORMAT_NAME else None
        except Exception:  # h5py raises many kinds on files it cannot read
            return None
    names = [p[len(root) + 1:] for p in fs.find(root)]
    ours = all(n.endswith((".npy", ".h5")) or n.rsplit("/", 1)[-1] in (
        MANIFEST_FILENAME, SHARDS_MANIFEST, WRITING_MARKER) for n in names)
    if not ours:
        return None
    if SHARDS_MANIFEST in names or MANIFEST_FILENAME in names:
        return "dataset"
    return "unfinished" if WRITING_MARKER in names else None
