"""Reading a sharded dataset (format version 2) as one store.

Every part is a version 1 dataset opened with its own backend, so each is
checked as a single-file dataset is; this module adds what joins them: the
parts' manifests against the checksums the dataset's manifest records, and
arrays that run across the parts (:class:`_Joined`).  A batch within one
part is that part's read or view; one that spans two parts is a copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DamagedDatasetError, DatasetChangedError
from ..format import SHARDS_MANIFEST, ArraySpec, PartRef, load_manifest, shard_refs, split_specs
from . import open_store
from ._atomic import remove
from .base import StoreReader, Verify
from .npy import NpyReader


class _Joined:
    """One array of a split: the same array of every part, end to end.

    ``lengths[k]`` rows come from part ``k``; ``shifts[k]``, when given, is
    added to its values (a CSR ``indptr``: the non-zeros before the part).
    """

    def __init__(self, key: str, spec: ArraySpec, parts: list[Any],
                 lengths: list[int], shifts: list[int] | None = None) -> None:
        self.key, self.spec, self.parts, self.shifts = key, spec, parts, shifts
        self.starts = np.cumsum([0, *lengths]).tolist()

    def _pieces(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """``(part, first, end)`` local row ranges that make up ``[start, stop)``."""
        k = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces = []
        while k < len(self.parts) and self.starts[k] < stop:
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if hi > lo:
                pieces.append((k, lo - self.starts[k], hi - self.starts[k]))
            k += 1
        return pieces

    def _read(self, k: int, lo: int, hi: int) -> np.ndarray:
        rows = self.parts[k].read(self.key, lo, hi)
        return rows if self.shifts is None else rows + self.shifts[k]

    def read(self, start: int, stop: int) -> np.ndarray:
        pieces = self._pieces(start, stop)
        if not pieces:
            return np.empty((0, *self.spec.shape[1:]), self.spec.dtype)
        if len(pieces) == 1:
            return self._read(*pieces[0])
        return np.concatenate([self._read(*p) for p in pieces])

    def view(self, start: int, stop: int) -> np.ndarray:
        pieces = self._pieces(start, stop)
        if len(pieces) == 1 and self.shifts is None:
            k, lo, hi = pieces[0]
            return self.parts[k].view(self.key, lo, hi)
        rows = self.read(start, stop)
        rows.flags.writeable = False
        return rows

    @property
    def verifier(self) -> _Joined:
        return self

    def check_all(self) -> None:
        """Verify every stored block of this array in every part."""
        for part in self.parts:
            part.verify(self.key)


class _LazyPart:
    """A part opened on first use: ``fetch(path)`` brings it into the directory first
    (a remote dataset's local cache, :mod:`ooc.store.remote`)."""

    def __init__(self, reader: ShardedReader, ref: PartRef, split: str | None,
                 info: dict[str, Any]) -> None:
        self._args = (reader, ref, split, info)
        self._part: StoreReader | None = None
        self._lock = threading.Lock()

    def _get(self) -> StoreReader:
        if self._part is None:
            with self._lock:
                if self._part is None:
                    reader, ref, *rest = self._args
                    assert reader.fetch is not None
                    reader.fetch(ref.path)
                    try:
                        self._part = reader._open_part(ref, *rest)
                    except DamagedDatasetError as exc:  # fetched from a newer dataset
                        remove(reader.path / ref.path)
                        raise DatasetChangedError(
                            f"{reader.path / ref.path}: the part fetched is not the one the "
                            "manifest read at open lists: the dataset at its URL was replaced "
                            f"after it was opened ({exc}). Open it again.") from None
        return self._part

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        return self._get().read(key, start, stop)

    def view(self, key: str, start: int, stop: int) -> np.ndarray:
        return self._get().view(key, start, stop)

    def verify(self, key: str) -> None:
        self._get().verify(key)

    def close(self) -> None:
        if self._part is not None:
            self._part.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"_args": self._args, "_part": self._part}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class ShardedReader(NpyReader):
    """Reads a sharded dataset directory: its manifest, then every part it lists.

    The directory is opened the way :class:`~ooc.store.npy.NpyReader` opens
    one (the manifest through a descriptor of it); the parts are opened by
    path, and each part's manifest must be the one recorded, so a part
    replaced while the dataset is opened is refused, never read.  With
    ``fetch`` (a remote dataset's cache), each part is fetched and opened
    when first read instead of at open.
    """

    def __init__(self, path: Path, verify: Verify = "once",
                 fetch: Callable[[str], None] | None = None) -> None:
        self._parts: list[Any] = []
        self.fetch = fetch
        super().__init__(path, verify)

    def _read_manifest(self) -> dict[str, Any]:
        with open(self._open_in(SHARDS_MANIFEST), "rb") as f:
            return load_manifest(f.read(), str(self.path / SHARDS_MANIFEST))

    def _open_arrays(self, where: str) -> None:
        splits, meta = shard_refs(self.manifest, where)
        for name, refs in splits.items():
            info = self.manifest["splits"][name]
            parts = [self._part(ref, name, info) for ref in refs]
            rows, nnz = [r.n_rows for r in refs], [r.nnz for r in refs]
            for key, spec in split_specs(name, info).items():
                if key.endswith("/indptr"):  # n + 1 entries: the last part's closing one too
                    shifts = np.cumsum([0, *nnz[:-1]]).tolist()
                    self._arrays[key] = _Joined(key, spec, parts, [*rows[:-1], rows[-1] + 1],
                                                shifts)
                else:
                    lengths = nnz if key.endswith(("/data", "/indices")) else rows
                    self._arrays[key] = _Joined(key, spec, parts, lengths)
        if meta is not None:
            part = self._part(meta, None, self.manifest["extras"])
            for name, info in self.manifest["extras"].items():
                key = f"extra/{name}"
                spec = ArraySpec(np.dtype(info["dtype"]), (info["n"],))
                self._arrays[key] = _Joined(key, spec, [part], [info["n"]])

    def _part(self, ref: PartRef, split: str | None, info: dict[str, Any]) -> Any:
        """The part, opened now, or when first read where parts are fetched."""
        if self.fetch is None:
            return self._open_part(ref, split, info)
        part = _LazyPart(self, ref, split, info)
        self._parts.append(part)
        return part

    def _open_part(self, ref: PartRef, split: str | None, info: dict[str, Any]) -> StoreReader:
        path = self.path / ref.path
        try:
            part = open_store(path, self.verify_mode)
        except DatasetChangedError:
            raise
        except Exception as exc:
            self._check_same_dir()  # a dataset replaced while opened: say so, not "damaged"
            raise DamagedDatasetError(
                f"{path}: this part of the sharded dataset {self.path} cannot be opened "
                f"({exc}). Restore it or write the dataset again.") from exc
        if self.fetch is None:
            self._parts.append(part)
        if part.manifest.get("checksum") != ref.manifest or not _fits(part, ref, split, info):
            if self.fetch is not None:  # not in _parts: closed by nobody else
                part.close()
            self._check_same_dir()
            raise DamagedDatasetError(
                f"{path}: this part is not the one the manifest of {self.path} lists (its "
                f"manifest's checksum is {part.manifest.get('checksum')}, expected "
                f"{ref.manifest}): a part of another write, or another part. Restore it or "
                "write the dataset again.")
        return part

    def describe(self, key: str) -> str:
        split, _, array = key.partition("/")
        return f"{self.path} (sharded): split {split!r}, array {array!r}"

    def close(self) -> None:
        for part in self._parts:
            part.close()


def _fits(part: StoreReader, ref: PartRef, split: str | None, info: dict[str, Any]) -> bool:
    """Whether a part holds what the dataset's manifest says of it (defensive: the
    recorded checksum already pins its manifest)."""
    found = part.manifest["splits"]
    if split is None:  # the meta part: no splits, the dataset's extras
        return not found and part.manifest.get("extras", {}) == info
    if set(found) != {split}:
        return False
    expected = {**info, "n_rows": ref.n_rows, "x": {**info["x"], "nnz": ref.nnz}}
    return split_specs(split, found[split]) == split_specs(split, expected)
