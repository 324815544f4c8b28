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

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._buffers import empty_for_read
from ..errors import ChecksumError, IncompleteDatasetError, NotADatasetError
from ..format import (
    BLOCK_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    HDF5_MANIFEST_NAME,
    check_version,
    dump_manifest,
    load_manifest,
)
from ._atomic import fsync_path, is_temporary
from ._file import PerProcessFile
from .base import (
    BlockVerifier,
    StoreReader,
    StoreWriter,
    Verify,
    pow2_rows,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
COMPRESSIONS = ("gzip", "lzf", "zstd", "blosc")
_CHUNK_CACHE_BYTES = 16 * BLOCK_BYTES


def chunk_rows_for(row_nbytes: int) -> int:
    """Rows per HDF5 chunk: a power of two, at most ``BLOCK_BYTES`` of data."""
    return pow2_rows(BLOCK_BYTES, row_nbytes)


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


class Hdf5Writer(StoreWriter):
    """Writes a one-file HDF5 dataset under a temporary path."""

    def __init__(self, tmp_path: Path, compression: str | None = None,
                 compression_level: int | None = None) -> None:
        super().__init__(tmp_path)
        self._filters = compression_kwargs(compression, compression_level)
        self._file = h5py.File(tmp_path, "w", rdcc_nbytes=_CHUNK_CACHE_BYTES,
                               alignment_threshold=65536, alignment_interval=4096)
        self._file.attrs["ooc_format"] = FORMAT_NAME
        self._file.attrs["ooc_format_version"] = FORMAT_VERSION
        self._file.attrs["ooc_state"] = "writing"

    def append(self, key: str, array: np.ndarray) -> None:
        ds = self._file.get(key)
        if ds is None:
            row_shape = tuple(array.shape[1:])
            row_nbytes = array.dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
            ds = self._file.create_dataset(
                key, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=array.dtype,
                chunks=(chunk_rows_for(row_nbytes), *row_shape), fletcher32=True,
                **self._filters)
        n = ds.shape[0]
        if len(array):
            ds.resize(n + len(array), axis=0)
            ds[n:] = array

    def layout(self, key: str) -> dict[str, Any]:
        return {"chunk_rows": self._file[key].chunks[0]}

    def finish(self, manifest: dict[str, Any]) -> None:
        for name, split in manifest["splits"].items():
            x = split["x"]
            if x["kind"] == "csr":
                attrs = self._file[f"{name}/x"].attrs
                attrs["encoding"] = "csr"
                attrs["shape"] = (split["n_rows"], x["n_cols"])
        self._file.create_dataset(HDF5_MANIFEST_NAME, data=dump_manifest(manifest),
                                  dtype=h5py.string_dtype())
        self._file.attrs["ooc_state"] = "complete"
        self._file.close()
        fsync_path(self.tmp_path)

    def abort(self) -> None:
        self._file.close()


class _H5Array:
    """Row reads from one HDF5 dataset, straight from the file where the layout allows."""

    def __init__(self, reader: Hdf5Reader, key: str, chunk_rows: int) -> None:
        ds = reader.h5file()[key]
        self.reader, self.key = reader, key
        self.dtype, self.row_shape, self.n_rows = ds.dtype, ds.shape[1:], ds.shape[0]
        self.row_nbytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.chunk_rows = chunk_rows
        self.offsets = _chunk_offsets(ds, self.row_nbytes)
        self.verifier = BlockVerifier(chunk_rows, self.n_rows, reader.verify_mode,
                                      self._check_chunk)

    def _h5read(self, start: int, stop: int) -> np.ndarray:
        try:
            return self.reader.h5file()[self.key][start:stop]
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
    a 4-byte fletcher32 sum, with no other filter.
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

    if n_chunks:
        ds.id.chunk_iter(visit)
    return offsets if (offsets >= 0).all() else None


class Hdf5Reader(StoreReader):
    """Reads a one-file HDF5 dataset."""

    def __init__(self, path: Path, verify: Verify = "once") -> None:
        super().__init__(path, verify)
        self._h5: h5py.File | None = None
        self._pid = -1
        self.raw = PerProcessFile(path)
        self.manifest = self._read_manifest()

    def h5file(self) -> h5py.File:
        """This process's h5py handle, opened on first use after a fork."""
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def _read_manifest(self) -> dict[str, Any]:
        unfinished = IncompleteDatasetError(
            f"{self.path}: this HDF5 file was left by an ooc writer that did not "
            "finish. Delete it and run the write again.")
        try:
            f = self.h5file()
        except OSError as exc:
            if is_temporary(self.path):
                raise unfinished from None
            raise NotADatasetError(f"{self.path}: HDF5 cannot open this file ({exc}).") from None
        if f.attrs.get("ooc_format") != FORMAT_NAME:
            raise NotADatasetError(
                f"{self.path}: expected an HDF5 file written by ooc (root attribute "
                "ooc_format='ooc'); this file has none.")
        check_version(f.attrs.get("ooc_format_version"), str(self.path))
        if HDF5_MANIFEST_NAME not in f:
            raise unfinished
        return load_manifest(f[HDF5_MANIFEST_NAME][()], str(self.path))

    def _open_array(self, key: str) -> _H5Array:
        return _H5Array(self, key, self.manifest["arrays"][key]["chunk_rows"])

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None
        self.raw.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_h5": None, "_pid": -1}
