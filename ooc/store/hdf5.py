"""HDF5 backend: one ``.h5`` file written with h5py.

Layout and checksums are specified in :mod:`ooc.format`.  Every dataset
carries HDF5's fletcher32 filter.  For datasets without compression, reads
take a fast path: a chunk is verified once through h5py (so HDF5 itself
checks its fletcher32 sum), then rows are read straight from the chunk's
byte offset (:class:`~ooc.store._file.PerProcessFile`), which avoids h5py's
per-call overhead and a copy through the chunk cache; a view of rows inside
one chunk is a slice of a memory map of the file.  Compressed datasets are
read through h5py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np

from .._buffers import empty_for_read
from .._platform import chunk_info, chunk_iter
from ..errors import (
    ChecksumError,
    DamagedDatasetError,
    IncompleteDatasetError,
    NotADatasetError,
    OocError,
)
from ..format import (
    BLOCK_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    HDF5_MANIFEST_NAME,
    ArraySpec,
    check_version,
    dump_manifest,
    layout_int,
    load_manifest,
)
from ._atomic import fsync_path
from ._disk import writing
from ._file import PerProcessFile, PreadFile
from .base import (
    BlockVerifier,
    StoreReader,
    StoreWriter,
    Verify,
    pow2_rows,
)

COMPRESSIONS = ("gzip", "lzf", "zstd", "blosc")
_CHUNK_CACHE_BYTES = 16 * BLOCK_BYTES


def chunk_rows_for(row_nbytes: int) -> int:
    """Rows per HDF5 chunk: a power of two, at most ``BLOCK_BYTES`` of data."""
    return pow2_rows(BLOCK_BYTES, row_nbytes)


def _row_nbytes(array: np.ndarray) -> int:
    return array.dtype.itemsize * math.prod(array.shape[1:])


def _extend(ds: h5py.Dataset, array: np.ndarray) -> None:
    """Append ``array``'s rows to the resizable dataset ``ds``."""
    if len(array):
        n = ds.shape[0]
        ds.resize(n + len(array), axis=0)
        ds[n:] = array


def compression_kwargs(compression: str | None, level: int | None) -> dict[str, Any]:
    """Translate a compression name to h5py ``create_dataset`` arguments."""
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4 if level is None else level,
                "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    if compression in ("zstd", "blosc"):
        try:
            import hdf5plugin
        except ImportError:
            raise ImportError(
                f"compression={compression!r} needs the hdf5plugin package: "
                "pip install hdf5plugin") from None
        if compression == "zstd":
            return dict(hdf5plugin.Zstd(clevel=3 if level is None else level))
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=5 if level is None else level,
                                     shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise ValueError(f"compression must be one of {COMPRESSIONS} or None; got {compression!r}.")


def _fixed(text: str) -> np.bytes_:
    """``text`` as a fixed-length HDF5 string.

    Variable-length strings live in HDF5's global heap, which has no checksum:
    a damaged one can send libhdf5 into an endless loop.
    """
    return np.bytes_(text.encode("utf-8"))


def format_name(h5: h5py.File) -> Any:
    """The root attribute ``ooc_format``, stored fixed-length or variable-length."""
    value = h5.attrs.get("ooc_format")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Hdf5Writer(StoreWriter):
    """Writes a one-file HDF5 dataset under a temporary path.

    Every append ends with a flush, so that a failed write (a full disk, a
    file-size limit) is raised by that call, not later by h5py's cleanup,
    where libhdf5 can only print it or crash.  After such a failure the
    writer refuses more work and its file is made harmless (:meth:`_disarm`).
    """

    def __init__(self, tmp_path: Path, compression: str | None = None,
                 compression_level: int | None = None) -> None:
        super().__init__(tmp_path)
        self._filters = compression_kwargs(compression, compression_level)
        self._failed: BaseException | None = None
        self._held: dict[str, list[np.ndarray]] = {}
        with writing(tmp_path):
            # libver v108+: object headers and the superblock carry checksums (HDF5 >= 1.8)
            self._file = h5py.File(tmp_path, "w", libver=("v108", "latest"),
                                   rdcc_nbytes=_CHUNK_CACHE_BYTES,
                                   alignment_threshold=65536, alignment_interval=4096)
        with self._writing():
            self._file.attrs["ooc_format"] = _fixed(FORMAT_NAME)
            self._file.attrs["ooc_format_version"] = FORMAT_VERSION
            self._file.attrs["ooc_state"] = _fixed("writing")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Run HDF5 writes; on failure disarm the file and raise (NoSpaceError if it fits)."""
        if self._failed is not None:
            raise ValueError(f"{self.tmp_path}: an earlier write failed ({self._failed}); "
                             "this writer can only be aborted.")
        try:
            with writing(self.tmp_path):
                yield
        except BaseException as exc:
            self._failed = exc
            self._disarm()
            raise

    def _disarm(self) -> None:
        """Point the file's descriptor at /dev/null, so nothing libhdf5 still flushes can fail.

        libhdf5 retries its unwritten chunks and metadata at every close, and
        a failure there is printed for each object or ends in a crash.  The
        file is a temporary that is deleted next, so where those bytes go
        does not matter.
        """
        try:
            fd = self._file.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_RDWR)
        except (OSError, RuntimeError, ValueError):
            return
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)

    def append(self, key: str, array: np.ndarray) -> None:
        with self._writing():
            ds = self._file.get(key)
            if ds is not None:
                _extend(ds, array)
            else:
                # held until a chunk's worth (at most BLOCK_BYTES) or the commit, so that
                # a small split gets chunks its size, not 1 MiB ones
                held = self._held.setdefault(key, [])
                held.append(np.array(array, copy=True))  # the caller may reuse its buffer
                full = chunk_rows_for(_row_nbytes(array))
                if sum(len(a) for a in held) < full:
                    return
                ds = self._create(key, full)
            self._file.flush()  # while ``ds`` lives: its release would flush outside this guard

    def _create(self, key: str, chunk_rows: int) -> h5py.Dataset:
        """Create ``key``'s dataset, chunks of ``chunk_rows``, with the rows held for it."""
        held = self._held.pop(key)
        row_shape = tuple(held[0].shape[1:])
        ds = self._file.create_dataset(
            key, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=held[0].dtype,
            chunks=(max(1, chunk_rows), *row_shape), fletcher32=True, **self._filters)
        _extend(ds, np.concatenate(held))
        return ds

    def layout(self, key: str) -> dict[str, Any]:
        if key in self._held:  # the whole array is less than a chunk: one chunk of its rows
            with self._writing():
                ds = self._create(key, sum(len(a) for a in self._held[key]))
                self._file.flush()
                del ds
        return {"chunk_rows": self._file[key].chunks[0]}

    def finish(self, manifest: dict[str, Any]) -> None:
        for key in list(self._held):  # not asked for its layout: written all the same
            self.layout(key)
        with self._writing():
            for name, split in manifest["splits"].items():
                x = split["x"]
                if x["kind"] == "csr":
                    attrs = self._file[f"{name}/x"].attrs
                    attrs["encoding"] = _fixed("csr")
                    attrs["shape"] = (split["n_rows"], x["n_cols"])
            self._file.create_dataset(HDF5_MANIFEST_NAME, data=_fixed(dump_manifest(manifest)))
            self._file.attrs["ooc_state"] = _fixed("complete")
            self._file.flush()
            self._file.close()
            fsync_path(self.tmp_path)

    def abort(self) -> None:
        self._disarm()  # the temporary is deleted next: let libhdf5 write nowhere
        # a file whose writes failed may not close cleanly; it is deleted anyway
        with suppress(OSError, RuntimeError, ValueError):
            self._file.close()


# what h5py raises on damaged metadata, besides OSError
_H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, IndexError, TypeError)


class _H5Array:
    """Row reads from one HDF5 dataset, straight from the file where the layout allows."""

    def __init__(self, reader: Hdf5Reader, key: str, spec: ArraySpec, chunk_rows: int) -> None:
        self.reader, self.key = reader, key
        try:
            ds = reader.h5file()[key]
            found = (ds.dtype, ds.shape, ds.chunks)
            if found != (spec.dtype, spec.shape, (chunk_rows, *spec.shape[1:])):
                raise DamagedDatasetError(
                    f"{reader.describe(key)}: expected {spec.dtype.str} {spec.shape} in chunks "
                    f"of {chunk_rows} rows, as the manifest says; the file holds "
                    f"{found[0].str} {found[1]} in chunks {found[2]}. The file is damaged; "
                    "restore it or write the dataset again.")
            # only once the shape is the manifest's: it sizes the chunk index
            self.offsets = _chunk_offsets(ds, spec.dtype.itemsize * math.prod(spec.shape[1:]))
        except DamagedDatasetError:
            raise
        except _H5_ERRORS as exc:
            raise DamagedDatasetError(
                f"{reader.describe(key)}: HDF5 cannot open the stored array ({exc}). The "
                "file is damaged; restore it or write the dataset again.") from None
        self.dtype, self.row_shape, self.n_rows = spec.dtype, spec.shape[1:], spec.shape[0]
        self.row_nbytes = self.dtype.itemsize * math.prod(self.row_shape)
        self.chunk_rows = chunk_rows
        self.verifier = BlockVerifier(chunk_rows, self.n_rows, reader.verify_mode,
                                      self._check_chunk)

    def _h5read(self, start: int, stop: int) -> np.ndarray:
        try:
            return self.reader.h5file()[self.key][start:stop]
        except OocError:  # DatasetChangedError is an OSError, not damage
            raise
        except OSError as exc:
            raise ChecksumError(
                f"{self.reader.describe(self.key)}, rows {start}:{stop}: HDF5 could "
                f"not read the stored chunk ({exc}). The file is damaged; restore it "
                "or write the dataset again.") from None

    def _check_chunk(self, chunk: int) -> None:
        self._h5read(chunk * self.chunk_rows, min((chunk + 1) * self.chunk_rows, self.n_rows))

    def _offset(self, row: int) -> int:
        """File offset of a row, inside its chunk's stored bytes."""
        chunk = row // self.chunk_rows
        return int(self.offsets[chunk]) + (row - chunk * self.chunk_rows) * self.row_nbytes  # type: ignore[index]

    def read(self, start: int, stop: int) -> np.ndarray:
        if self.offsets is None:
            return self._h5read(start, stop)
        self.verifier.ensure(start, stop)
        offset = self._offset(start) if stop > start else 0
        # placed for the first (usually the only) chunk read
        out = empty_for_read((stop - start, *self.row_shape), self.dtype, offset)
        pos = start
        while pos < stop:
            end = min(stop, (pos // self.chunk_rows + 1) * self.chunk_rows)
            part = out if end - pos == len(out) else out[pos - start:end - start]
            self.reader.raw.read_into(part, offset if pos == start else self._offset(pos))
            pos = end
        return out

    def view(self, start: int, stop: int) -> np.ndarray:
        if self.offsets is None or start // self.chunk_rows != (stop - 1) // self.chunk_rows:
            out = self.read(start, stop)  # compressed, empty, or across chunks: a copy
            out.flags.writeable = False
            return out
        self.verifier.ensure(start, stop)
        return self.reader.raw.view(self._offset(start), (stop - start, *self.row_shape),
                                    self.dtype)


def _chunk_offsets(ds: h5py.Dataset, row_nbytes: int) -> np.ndarray | None:
    """Byte offset of every chunk, or None where they cannot be read directly.

    The fast path needs chunks that hold whole rows, stored as raw bytes plus
    a 4-byte fletcher32 sum, with no other filter, and an HDF5 that tells
    where chunks are (:func:`ooc._platform.chunk_iter`, else ``chunk_info``).
    """
    filters = ds.id.get_create_plist()
    only_fletcher = filters.get_nfilters() == 1 and ds.fletcher32
    if not only_fletcher or ds.chunks is None or ds.chunks[1:] != ds.shape[1:]:
        return None
    rows = ds.chunks[0]
    n_chunks = -(-ds.shape[0] // rows)
    offsets = np.full(n_chunks, -1, dtype=np.int64)
    expected_size = rows * row_nbytes + 4

    def visit(info: Any) -> None:
        if info.filter_mask == 0 and info.size == expected_size:
            offsets[info.chunk_offset[0] // rows] = info.byte_offset

    if n_chunks and chunk_iter():
        ds.id.chunk_iter(visit)
    elif n_chunks and chunk_info():  # HDF5 before 1.12.3: one look-up per chunk
        rest = (0,) * (len(ds.shape) - 1)
        for chunk in range(n_chunks):
            visit(ds.id.get_chunk_info_by_coord((chunk * rows, *rest)))
    elif n_chunks:
        return None  # no chunk index to read: every read goes through h5py
    return offsets if (offsets >= 0).all() else None


def read_manifest(f: h5py.File, where: str) -> dict[str, Any]:
    """The checked manifest of the ooc dataset open in ``f``."""
    try:
        name, version = format_name(f), f.attrs.get("ooc_format_version")
        text = f[HDF5_MANIFEST_NAME][()] if HDF5_MANIFEST_NAME in f else None
    except _H5_ERRORS as exc:
        raise DamagedDatasetError(
            f"{where}: HDF5 cannot read the ooc metadata ({exc}). The file is "
            "damaged; restore it or write the dataset again.") from None
    if name != FORMAT_NAME:
        raise NotADatasetError(
            f"{where}: expected an HDF5 file written by ooc (root attribute "
            "ooc_format='ooc'); this file has none.")
    check_version(version, where)
    if text is None:
        raise IncompleteDatasetError(
            f"{where}: this HDF5 file was left by an ooc writer that did not "
            "finish. Delete it and run the write again.")
    return load_manifest(text, where)


class Hdf5Reader(StoreReader):
    """Reads a one-file HDF5 dataset.

    The file is opened here twice, by h5py and as a plain descriptor for
    direct reads, and both are checked to be the same file.
    """

    def __init__(self, path: Path, verify: Verify = "once") -> None:
        super().__init__(path, verify)
        self._h5: h5py.File | None = None
        self._fileobj: BinaryIO | None = None
        self._pid = -1
        self.raw = PerProcessFile(path, os.open(path, os.O_RDONLY))
        try:
            self.manifest = self._read_manifest()
            self._open_arrays(str(path))
        except BaseException:
            self.close()
            raise

    def h5file(self) -> h5py.File:
        """This process's h5py handle, opened again after a fork or pickling.

        It is opened by path (libhdf5's fast driver); where the path now names
        another file, or none, h5py reads through the descriptor opened with
        the dataset instead, so only the opened file is ever read.
        """
        if self._h5 is None or self._pid != os.getpid():
            fd = self.raw.fd()  # the opened file; an unpickled reader checks it
            try:
                h5 = h5py.File(self.path, "r")
            except OSError:
                h5 = None
            if h5 is not None and not os.path.samestat(
                    os.fstat(h5.id.get_vfd_handle()), os.fstat(fd)):
                h5.close()
                h5 = None
            self._fileobj = None
            if h5 is None:
                self._fileobj = PreadFile(fd)
                h5 = self._h5_open(self._fileobj)
            self._h5, self._pid = h5, os.getpid()
        return self._h5

    def _h5_open(self, source: BinaryIO) -> h5py.File:
        try:
            return h5py.File(source, "r")
        except OSError as exc:  # the signature was HDF5's (detect_format)
            raise DamagedDatasetError(
                f"{self.path}: HDF5 cannot open this file ({exc}). The file is damaged "
                "or cut short; restore it or write the dataset again.") from None

    def _read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.h5file(), str(self.path))

    def _open_array(self, key: str, spec: ArraySpec) -> _H5Array:
        chunk_rows = layout_int(self.manifest["arrays"][key], key, "chunk_rows", str(self.path))
        return _H5Array(self, key, spec, chunk_rows)

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
            if self._fileobj is not None:
                self._fileobj.close()
        self._h5 = self._fileobj = None
        self.raw.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_h5": None, "_fileobj": None, "_pid": -1}
