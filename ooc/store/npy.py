"""NumPy backend: a directory of plain ``.npy`` files and a JSON manifest.

Layout and checksums are specified in :mod:`ooc.format`.  Reads are
explicit ``preadv`` calls into fresh arrays; views are read-only slices of
a memory map whose pages are released as views are handed out (see
:mod:`ooc.store._file`), so resident memory stays bounded however much of
the file is visited.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import crc32c
import numpy as np

from .._buffers import empty_for_read
from ..errors import ChecksumError, IncompleteDatasetError, NotADatasetError
from ..format import (
    BLOCK_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILENAME,
    NPY_HEADER_BYTES,
    dump_manifest,
    load_manifest,
)
from ._atomic import fsync_tree, is_temporary
from ._file import PerProcessFile
from .base import (
    BlockVerifier,
    StoreReader,
    StoreWriter,
    Verify,
    pow2_rows,
)


def block_rows_for(row_nbytes: int) -> int:
    """Rows per checksum block: a power of two, at most ``BLOCK_BYTES`` of data."""
    return pow2_rows(BLOCK_BYTES, row_nbytes)


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """Return a version 1.0 ``.npy`` header padded to ``NPY_HEADER_BYTES``."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    room = NPY_HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise ValueError(f"npy header for shape {shape} does not fit in {room} bytes")
    body = (text.ljust(room - 1) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    os.replace(tmp, path)


class _ArrayFile:
    """One growing ``.npy`` file and the CRC-32C of each block of its rows."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.dtype, self.row_shape = path, dtype, row_shape
        self.row_nbytes = dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
        self.block_rows = block_rows_for(self.row_nbytes)
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in finish
        self.file.write(npy_header(dtype, (0, *row_shape)))
        self.n_rows = 0
        self.crcs: list[int] = []
        self._crc = 0
        self._fill = 0  # rows in the current, unfinished block

    def append(self, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=self.dtype)
        if not len(data):
            return
        self.file.write(memoryview(data).cast("B"))
        done = 0
        while done < len(data):
            take = min(len(data) - done, self.block_rows - self._fill)
            self._crc = crc32c.crc32c(memoryview(data[done:done + take]).cast("B"), self._crc)
            self._fill += take
            done += take
            if self._fill == self.block_rows:
                self.crcs.append(self._crc)
                self._crc, self._fill = 0, 0
        self.n_rows += len(data)

    def finish(self) -> None:
        if self._fill:
            self.crcs.append(self._crc)
        self.file.seek(0)
        self.file.write(npy_header(self.dtype, (self.n_rows, *self.row_shape)))
        self.file.close()
        np.save(crc_path(self.path), np.asarray(self.crcs, dtype="<u4"))


def crc_path(npy_path: Path) -> Path:
    """Path of the checksum file that goes with an array file."""
    return npy_path.with_name(npy_path.name[: -len(".npy")] + ".crc32c.npy")


class NpyWriter(StoreWriter):
    """Writes a NumPy-backend dataset directory under a temporary path."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        if options:
            raise ValueError(f"the npy format takes no options; got {sorted(options)}.")
        super().__init__(tmp_path)
        tmp_path.mkdir()
        _write_json(tmp_path / MANIFEST_FILENAME, {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "complete": False})
        self._arrays: dict[str, _ArrayFile] = {}

    def append(self, key: str, array: np.ndarray) -> None:
        if key not in self._arrays:
            self._arrays[key] = _ArrayFile(
                self.tmp_path / f"{key}.npy", array.dtype, tuple(array.shape[1:]))
        self._arrays[key].append(array)

    def layout(self, key: str) -> dict[str, Any]:
        arr = self._arrays[key]
        return {"block_rows": arr.block_rows}

    def finish(self, manifest: dict[str, Any]) -> None:
        for arr in self._arrays.values():
            arr.finish()
        _write_json(self.tmp_path / MANIFEST_FILENAME, dump_manifest(manifest))
        fsync_tree(self.tmp_path)

    def abort(self) -> None:
        for arr in self._arrays.values():
            arr.file.close()


class _ArrayReader:
    """Verified row reads from one ``.npy`` file."""

    def __init__(self, path: Path, block_rows: int, mode: Verify, where: str) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _fortran, dtype = read_header(f)
            self.offset = f.tell()
        self.dtype, self.row_shape = dtype, tuple(shape[1:])
        self.row_nbytes = dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.n_rows = shape[0]
        self.file = PerProcessFile(path)
        self.crcs = np.load(crc_path(path))
        self.where = where
        self.verifier = BlockVerifier(block_rows, self.n_rows, mode, self._check_block)
        if len(self.crcs) != self.verifier.n_blocks:
            raise ChecksumError(
                f"{path}: expected {self.verifier.n_blocks} block checksums; found "
                f"{len(self.crcs)}. The dataset is damaged; write it again.")

    def _check_block(self, block: int) -> None:
        rows = self.verifier.block_rows
        start, stop = block * rows, min((block + 1) * rows, self.n_rows)
        crc = self.file.crc32c(self.offset + start * self.row_nbytes,
                               (stop - start) * self.row_nbytes)
        if crc != int(self.crcs[block]):
            raise ChecksumError(
                f"{self.where}, rows {start}:{stop} ({self.file.path}): checksum "
                "mismatch, the stored bytes are damaged. Restore the file or write the "
                "dataset again.")

    def read(self, start: int, stop: int) -> np.ndarray:
        self.verifier.ensure(start, stop)
        offset = self.offset + start * self.row_nbytes
        out = empty_for_read((stop - start, *self.row_shape), self.dtype, offset)
        if stop > start:
            self.file.read_into(out, offset)
        return out

    def view(self, start: int, stop: int) -> np.ndarray:
        self.verifier.ensure(start, stop)
        return self.file.view(self.offset + start * self.row_nbytes,
                              (stop - start, *self.row_shape), self.dtype)


class NpyReader(StoreReader):
    """Reads a NumPy-backend dataset directory."""

    def __init__(self, path: Path, verify: Verify = "once") -> None:
        super().__init__(path, verify)
        manifest_path = path / MANIFEST_FILENAME
        if not manifest_path.exists():
            if is_temporary(path):
                raise IncompleteDatasetError(
                    f"{path}: this is a temporary left by an ooc writer that did "
                    "not finish. Delete it and run the write again.")
            raise NotADatasetError(
                f"{path}: expected an ooc dataset directory holding "
                f"{MANIFEST_FILENAME}; found none.")
        self.manifest = load_manifest(manifest_path.read_bytes(), str(manifest_path))

    def _open_array(self, key: str) -> _ArrayReader:
        return _ArrayReader(self.path / f"{key}.npy", self.manifest["arrays"][key]["block_rows"],
                            self.verify_mode, self.describe(key))

    def close(self) -> None:
        for arr in self._arrays.values():
            arr.file.close()
