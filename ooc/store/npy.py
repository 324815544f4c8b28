"""NumPy backend: a directory of plain ``.npy`` files and a JSON manifest.

Layout and checksums are specified in :mod:`ooc.format`.  Reads are
explicit ``preadv`` calls into fresh arrays; views are read-only slices of
a memory map whose pages are released as views are handed out (see
:mod:`ooc.store._file`), so resident memory stays bounded however much of
the file is visited.
"""

from __future__ import annotations

import json
import math
import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

import crc32c
import numpy as np

from .._buffers import empty_for_read
from .._platform import DIR_FD
from ..errors import (
    ChecksumError,
    DamagedDatasetError,
    DatasetChangedError,
    NotADatasetError,
)
from ..format import (
    BLOCK_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILENAME,
    NPY_HEADER_BYTES,
    ArraySpec,
    checksum_digest,
    dump_manifest,
    layout_int,
    load_manifest,
)
from ._atomic import fsync_tree, hold_lock
from ._disk import writing
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
        with writing(self.path):
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

    def block_crcs(self) -> np.ndarray:
        """The checksum of every block, the last (unfinished) one included."""
        return np.asarray(self.crcs + [self._crc] * bool(self._fill), dtype="<u4")

    def finish(self) -> None:
        with writing(self.path):
            self.file.seek(0)
            self.file.write(npy_header(self.dtype, (self.n_rows, *self.row_shape)))
            self.file.close()
        with writing(crc_path(self.path)):
            np.save(crc_path(self.path), self.block_crcs())


def crc_path(npy_path: Path) -> Path:
    """Path of the checksum file that goes with an array file."""
    return npy_path.with_name(npy_path.name[: -len(".npy")] + ".crc32c.npy")


class NpyWriter(StoreWriter):
    """Writes a NumPy-backend dataset directory under a temporary path."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        if options:
            raise ValueError(f"the npy format takes no options; got {sorted(options)}.")
        super().__init__(tmp_path)
        with writing(tmp_path / MANIFEST_FILENAME):
            tmp_path.mkdir()
            _write_json(tmp_path / MANIFEST_FILENAME, {
                "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "complete": False})
        self._lock = hold_lock(tmp_path)  # tells later writers this temporary is in use
        self._arrays: dict[str, _ArrayFile] = {}

    def append(self, key: str, array: np.ndarray) -> None:
        if key not in self._arrays:
            path = self.tmp_path / f"{key}.npy"
            with writing(path):
                self._arrays[key] = _ArrayFile(path, array.dtype, tuple(array.shape[1:]))
        self._arrays[key].append(array)

    def layout(self, key: str) -> dict[str, Any]:
        arr = self._arrays[key]
        return {"block_rows": arr.block_rows, "checksums": checksum_digest(arr.block_crcs())}

    def finish(self, manifest: dict[str, Any]) -> None:
        for arr in self._arrays.values():
            arr.finish()
        with writing(self.tmp_path / MANIFEST_FILENAME):
            _write_json(self.tmp_path / MANIFEST_FILENAME, dump_manifest(manifest))
        with writing(self.tmp_path):
            fsync_tree(self.tmp_path)
        self._unlock()

    def abort(self) -> None:
        for arr in self._arrays.values():
            # closing flushes what is buffered, which fails again on a full disk;
            # the files are deleted next
            with suppress(OSError):
                arr.file.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


class _ArrayReader:
    """Verified row reads from one ``.npy`` file, held open from :func:`ooc.open` on."""

    def __init__(self, file: PerProcessFile, offset: int, spec: ArraySpec, crcs: np.ndarray,
                 block_rows: int, mode: Verify, where: str) -> None:
        self.file, self.offset, self.crcs, self.where = file, offset, crcs, where
        self.dtype, self.row_shape, self.n_rows = spec.dtype, spec.shape[1:], spec.shape[0]
        self.row_nbytes = self.dtype.itemsize * math.prod(self.row_shape)
        self.verifier = BlockVerifier(block_rows, self.n_rows, mode, self._check_block)

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


def _read_npy_header(fd: int, path: Path) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """``(dtype, shape, data offset, file size)`` of the ``.npy`` file open as ``fd``."""
    with open(fd, "rb", closefd=False) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
        except Exception as exc:  # numpy raises ValueError, EOFError, SyntaxError, ...
            raise DamagedDatasetError(
                f"{path}: the .npy header cannot be read ({type(exc).__name__}: {exc}). The "
                "file is damaged; restore it or write the dataset again.") from None
        offset = f.tell()
    if fortran:
        raise DamagedDatasetError(f"{path}: the .npy header says Fortran order; ooc writes "
                                  "C order. The file is damaged; write the dataset again.")
    return dtype, shape, offset, os.fstat(fd).st_size


def _check_stored(path: Path, found: tuple[np.dtype, tuple[int, ...]], spec: ArraySpec,
                  offset: int, size: int) -> None:
    """Raise unless a file holds exactly the array its manifest describes."""
    dtype, shape = found
    nbytes = offset + spec.dtype.itemsize * math.prod(spec.shape)
    if dtype != spec.dtype or tuple(shape) != spec.shape or size != nbytes:
        raise DamagedDatasetError(
            f"{path}: expected {spec.dtype.str} {spec.shape} in {nbytes} bytes, as the "
            f"manifest says; the file holds {dtype.str} {tuple(shape)} in {size} bytes. The "
            "file is damaged or not this dataset's; restore it or write the dataset again.")


def _open_dir(path: Path) -> tuple[int | None, os.stat_result]:
    """A descriptor of the dataset directory (None without DIR_FD) and its identity."""
    try:
        if not DIR_FD:
            found = os.stat(path)
            if not stat.S_ISDIR(found.st_mode):
                raise NotADirectoryError(path)
            return None, found
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        return fd, os.fstat(fd)
    except NotADirectoryError:
        raise NotADatasetError(f"{path}: expected an ooc dataset directory; found a "
                               "file.") from None


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


class NpyReader(StoreReader):
    """Reads a NumPy-backend dataset directory.

    Every file is opened here, through one descriptor of the directory, so
    that the manifest and the arrays read are of one and the same dataset
    even while another process replaces it.  Where ``open`` takes no
    directory descriptor (:data:`ooc._platform.DIR_FD`), files are opened
    by path and the directory is checked to be the same one before and
    after; a dataset replaced in between raises DatasetChangedError, and
    :func:`ooc.open` opens it again.
    """

    def __init__(self, path: Path, verify: Verify = "once") -> None:
        super().__init__(path, verify)
        self._dir, self._dir_stat = _open_dir(path)
        try:
            self.manifest = self._read_manifest()
            self._open_arrays(str(path / MANIFEST_FILENAME))
            if self._dir is None:
                self._check_same_dir()
        except BaseException:
            self.close()
            if self._dir is None:  # files of two datasets look damaged: say replaced
                self._check_same_dir()
            raise
        finally:
            if self._dir is not None:
                os.close(self._dir)

    def _open_in(self, name: str) -> int:
        """Open ``name`` inside the dataset directory opened as ``self._dir``."""
        try:
            if self._dir is None:
                return os.open(self.path / name, os.O_RDONLY)  # checked by _check_same_dir
            return os.open(name, os.O_RDONLY, dir_fd=self._dir)
        except FileNotFoundError:
            now = _stat_or_none(self.path)
            if now is None or not os.path.samestat(self._dir_stat, now):
                raise DatasetChangedError(
                    f"{self.path}: the dataset was replaced or deleted while it was being "
                    "opened. Open it again.") from None
            if name == MANIFEST_FILENAME:
                raise NotADatasetError(
                    f"{self.path}: expected an ooc dataset directory holding "
                    f"{MANIFEST_FILENAME}; found none.") from None
            raise DamagedDatasetError(
                f"{self.path / name}: this file of the dataset is missing. The dataset is "
                "damaged; restore the file or write the dataset again.") from None

    def _check_same_dir(self) -> None:
        """Raise DatasetChangedError unless the path still names the directory first opened."""
        now = _stat_or_none(self.path)
        if now is None or not os.path.samestat(self._dir_stat, now):
            raise DatasetChangedError(
                f"{self.path}: the dataset was replaced or deleted while it was being "
                "opened. Open it again.")

    def _read_manifest(self) -> dict[str, Any]:
        with open(self._open_in(MANIFEST_FILENAME), "rb") as f:
            return load_manifest(f.read(), str(self.path / MANIFEST_FILENAME))

    def _open_array(self, key: str, spec: ArraySpec) -> _ArrayReader:
        where = str(self.path / MANIFEST_FILENAME)
        block_rows = layout_int(self.manifest["arrays"][key], key, "block_rows", where)
        crcs = self._read_crcs(key, -(-spec.shape[0] // block_rows))
        file = PerProcessFile(self.path / f"{key}.npy",
                              self._open_in(f"{key}.npy"))
        try:
            dtype, shape, offset, size = _read_npy_header(file.fd(), file.path)
            _check_stored(file.path, (dtype, shape), spec, offset, size)
        except BaseException:
            file.close()
            raise
        return _ArrayReader(file, offset, spec, crcs, block_rows, self.verify_mode,
                            self.describe(key))

    def _read_crcs(self, key: str, n_blocks: int) -> np.ndarray:
        """The block checksums of ``key``, checked against the manifest's digest of them."""
        path = crc_path(self.path / f"{key}.npy")
        spec = ArraySpec(np.dtype("<u4"), (n_blocks,))
        fd = self._open_in(path.relative_to(self.path).as_posix())
        try:
            dtype, shape, offset, size = _read_npy_header(fd, path)
            _check_stored(path, (dtype, shape), spec, offset, size)
            crcs = np.frombuffer(os.pread(fd, 4 * n_blocks, offset), dtype=spec.dtype)
        finally:
            os.close(fd)
        digest = self.manifest["arrays"][key].get("checksums")
        if len(crcs) != n_blocks or (digest is not None and digest != checksum_digest(crcs)):
            raise ChecksumError(
                f"{path}: the block checksums do not match the manifest's digest of them "
                f"({digest}). The file is damaged or not this dataset's (swapped with "
                "another?); restore it or write the dataset again.")
        return crcs

    def close(self) -> None:
        for arr in self._arrays.values():
            arr.file.close()
