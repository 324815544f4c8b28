"""The ooc on-disk format, versions 1 and 2.

This docstring is the specification.  A single-file dataset (one ``.h5``
file or one npy directory) is version 1 (``FORMAT_VERSION``); version 2
(``SHARDED_VERSION``) adds the sharded layout below, whose parts are
version 1 datasets.  Writers write the lowest version that holds what they
write, as NumPy's ``.npy`` format does, so an ooc that reads only version 1
still reads every single-file dataset; :func:`ooc.open` reads both.

Capabilities
------------
* A dataset holds named *splits* (``train``, ``val``, ...).  Every split has
  three arrays with one row per example:

  - ``x``: the features, either **dense** (shape ``(n, d)``, any NumPy
    numeric dtype) or **sparse CSR** (``data`` of a float or integer dtype,
    ``indices`` int32 with sorted, unique column indices per row, ``indptr``
    int64 of length ``n + 1`` starting at 0);
  - ``y``: int64 class labels, shape ``(n,)``;
  - ``row_ids``: int64, shape ``(n,)``, the position of each row in the
    user's source, so that predictions can be traced back.

* ``ooc preprocess`` writes up to three splits, in this order: ``train``,
  ``val`` (validation) and ``test`` (held out for the final evaluation),
  the last two only when they have rows.  Its vectorizer (the extras
  ``vectorizer/*`` below) is fitted on ``train`` alone; ``val`` and
  ``test`` rows are only transformed.  ``config["preprocess"]`` records how
  rows were assigned: ``val_split`` / ``val_inputs``, ``test_split`` /
  ``test_inputs`` and ``seed`` (see :func:`ooc.text.splits.assign_splits`).
* Extra 1-D numeric arrays under ``extra/<name>`` (e.g. the fitted
  vectorizer of ``ooc preprocess``: its vocabulary keys, idf, words), listed
  in ``extras`` with their dtype and length.
* Dataset metadata: ``classes`` (list of str or null), ``feature_names``
  (list of str or null), ``config`` (any JSON object, e.g. vectorizer
  settings), and per split the row count and, for sparse ``x``, the number
  of stored non-zeros.
* Every stored byte of array data is covered by a checksum that readers
  verify (see the backends below).  The manifest carries its own CRC-32C.
* The manifest decides what a read returns: on open, readers compare every
  stored array's dtype, shape and layout with the manifest's and refuse a
  dataset where they differ; ``label_counts`` (per split, optional) lets
  ``verify`` check the labels too.  An open dataset reads only the files it
  opened: a path replaced afterwards is not read.
* Datasets are written to a temporary name (``<name>.ooc-tmp-<host>-<pid>-<token>``) and
  appear under their final name only once complete (atomic rename after
  fsync).  Readers refuse every temporary, finished or not; a temporary
  left by a writer that died is removed by the next writer of that name.
  A shuffling writer keeps the rows it has not yet written in
  ``<temporary>-spill``, a directory of raw bucket files (not part of the
  format), removed at commit and, like its temporary, after its death.

Limitations
-----------
* Rows are appended, never updated in place; a dataset is immutable once
  committed.
* ``y`` holds one integer label per row (single-label classification).
* Sparse ``x`` has at most 2**31 - 1 columns (int32 indices).

The manifest
------------
A JSON object, UTF-8, with these keys (more may be added in later minor
revisions; readers ignore keys they do not know)::

    {
      "format": "ooc",
      "format_version": 1,
      "complete": true,
      "created_by": "ooc 0.1.0",
      "splits": {
        "train": {
          "n_rows": 1000,
          "label_counts": [600, 400],
          "x": {"kind": "dense", "dtype": "<i4", "n_cols": 500},
          "y": {"dtype": "<i8"},
          "row_ids": {"dtype": "<i8"}
        },
        "val": {
          "n_rows": 200,
          "x": {"kind": "csr", "dtype": "<f4", "n_cols": 20000, "nnz": 31000},
          ...
        },
        "test": {...}
      },
      "classes": ["neg", "pos"],
      "feature_names": ["a", "b", ...],
      "config": {...},
      "extras": {"vectorizer/idf": {"dtype": "<f8", "n": 31000}, ...},
      "arrays": {"train/x": {...backend-specific layout...}, ...},
      "checksum": "crc32c:1a2b3c4d"
    }

``checksum`` is the CRC-32C of the manifest serialised with
``json.dumps(manifest_without_checksum, sort_keys=True,
separators=(",", ":"))``.

Array keys name the stored arrays: ``<split>/x``, ``<split>/y`` and
``<split>/row_ids`` for dense ``x``; ``<split>/x/data``,
``<split>/x/indices`` and ``<split>/x/indptr`` replace ``<split>/x`` for
CSR; ``extra/<name>`` for each extra array (``extras`` is optional: a
manifest without it has none).  ``config["vectorizer"]``, when present,
holds the settings of the vectorizer whose arrays are the extras
``vectorizer/*``:

* n-gram (``"kind": "ngram"``): ``keys`` (uint64, every ``min_df`` n-gram,
  one 25-bit slot per word id or 21-bit slot per code point, see
  :mod:`ooc.text.ngrams`), ``idf`` (float64, same order), ``selected_keys``
  and ``selected_idf`` (the output columns, in column order), and for the
  word analyzer ``tokens_utf8`` / ``tokens_offsets`` (the words the keys'
  ids index, UTF-8 bytes and int64 offsets);
* sequence (``"kind": "sequence"``): ``words_utf8`` / ``words_offsets``
  (the kept words, most frequent first: word ``i`` has id ``i + 1``).

HDF5 backend (one ``.h5`` file)
-------------------------------
* Root attributes ``ooc_format = "ooc"``, ``ooc_format_version = 1`` and
  ``ooc_state``: ``"writing"`` until the manifest is written, then
  ``"complete"`` (informative: readers go by the manifest).
* One group per split; inside it the datasets ``x``, ``y`` and ``row_ids``,
  or for CSR a group ``x`` with attributes ``encoding = "csr"`` and
  ``shape = (n, d)`` holding the datasets ``data``, ``indices`` and
  ``indptr`` (the layout anndata uses, so other tools can read it).
* All datasets are chunked along rows, resizable, and carry HDF5's
  ``fletcher32`` checksum filter, optionally after a compression filter
  (gzip, lzf, or zstd/blosc through ``hdf5plugin``).  Each chunk spans whole
  rows.
* The file is written with HDF5 1.8's file format or later (superblock
  version 2+, object headers version 2), whose metadata carries checksums;
  strings (attributes, the manifest) are fixed-length UTF-8, never
  variable-length, because HDF5's global heap has no checksum.  Readers
  also accept variable-length strings, as earlier builds wrote them.
* The manifest is the scalar string dataset ``/ooc_manifest``, written last
  at commit.  Its ``arrays`` entries record ``{"chunk_rows": C}``.

Sharded layout (version 2, a directory)
---------------------------------------
Written by many processes at once (``ooc preprocess --shard-rows``,
:func:`ooc.create_sharded`); read by :func:`ooc.open` as one dataset.

* ``ooc-shards.json``: the manifest, written last at commit (the directory
  is a temporary until then, as above).  Its keys are those of a version 1
  manifest with ``"format_version": 2`` and ``"layout": "sharded"``, minus
  ``arrays``, plus ``dataset_id`` (32 hex digits, new for every write) and
  ``meta``; every split has ``parts``, a list of
  ``{"path": "train/part-00000.h5", "n_rows": R, "nnz": Z, "manifest":
  "crc32c:…"}`` (``nnz`` 0 for dense ``x``)::

      {"format": "ooc", "format_version": 2, "layout": "sharded",
       "complete": true, "dataset_id": "…", "splits": {"train": {"n_rows": …,
       "label_counts": […], "x": {…}, "y": {…}, "row_ids": {…},
       "parts": [{"path": "train/part-00000.h5", "n_rows": 4096, "nnz": 610000,
                  "manifest": "crc32c:0badf00d"}, …]}},
       "classes": […], "feature_names": […], "config": {…},
       "extras": {…}, "meta": {"path": "meta.h5", "manifest": "crc32c:…"},
       "checksum": "crc32c:…"}

* A split's rows are the rows of its parts, in the order listed: row ``i``
  of the split is row ``i - R0 - … - R(k-1)`` of part ``k``.  Each part is a
  complete version 1 dataset (``part-NNNNN.h5`` or an npy directory
  ``part-NNNNN``) holding that one split, with ``config`` ``{"part_of":
  dataset_id, "split": name, "index": k}``; its ``x``, ``y`` and
  ``row_ids`` have the split's kinds, dtypes and columns.  A CSR part's
  ``indptr`` starts at 0: the split's ``indptr`` adds the non-zeros of the
  parts before it.
* ``meta`` (null when there are no extras) names a version 1 dataset with no
  splits holding the ``extras``, with ``config`` ``{"part_of": dataset_id}``.
* ``manifest`` is the part's own manifest checksum: readers refuse a part
  whose manifest is not the one recorded (a part of another write, or
  another part's), and check each part as its backend does.  Part paths are
  relative, of the form ``<split>/part-<5+ digits>[.h5]`` or ``meta[.h5]``.
* In object storage, where nothing is renamed, a sharded dataset is written
  in place under its URL: ``ooc-writing.json`` (``{"dataset_id": …}``)
  first, then each part (an HDF5 part is one object; an npy part has its
  ``ooc.json`` uploaded last), the meta part, ``ooc-shards.json``, and
  ``ooc-writing.json`` is deleted.  A URL holding ``ooc-writing.json`` and
  no manifest is an unfinished write: readers refuse it, the next writer
  of the URL replaces it.

NumPy backend (a directory)
---------------------------
* ``ooc.json``: the manifest.  It is written first with
  ``"complete": false`` and rewritten at commit.
* ``<key>.npy`` for every array key (``train/x.npy``, ``train/x/data.npy``,
  ...): plain version-1.0 ``.npy`` files, C order, little-endian, each
  loadable with ``np.load(path, mmap_mode="r")``.  The header is padded to
  ``NPY_HEADER_BYTES`` so it can be rewritten with the final shape.
* ``<key>.crc32c.npy``: uint32 CRC-32C of each block of ``block_rows``
  consecutive rows of the data (the last block may be shorter).  The
  manifest's ``arrays`` entries record ``{"block_rows": R, "n_blocks": B,
  "checksums": "crc32c:…"}``, the last being the CRC-32C of the checksum
  file's little-endian uint32 values, so a checksum file cannot be swapped
  for another's (optional: older manifests lack it).
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import crc32c
import numpy as np

from .errors import (
    ChecksumError,
    DamagedDatasetError,
    FormatVersionError,
    IncompleteDatasetError,
    NotADatasetError,
)

FORMAT_NAME = "ooc"
FORMAT_VERSION = 1
SHARDED_VERSION = 2
READ_VERSIONS = (FORMAT_VERSION, SHARDED_VERSION)
MANIFEST_FILENAME = "ooc.json"
SHARDS_MANIFEST = "ooc-shards.json"
WRITING_MARKER = "ooc-writing.json"  # a sharded write in progress at a URL
PART_PATH = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*/part-[0-9]{5,}|meta)(?:\.h5)?\Z")
HDF5_MANIFEST_NAME = "ooc_manifest"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of every HDF5 file
NPY_HEADER_BYTES = 128
BLOCK_BYTES = 1 << 20
TMP_MARKER = ".ooc-tmp-"
SPLIT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
EXTRA_NAME = re.compile(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*\Z")


def array_keys(split: str, kind: str) -> tuple[str, ...]:
    """Return the keys of the arrays stored for a split whose x is ``kind``."""
    x_keys = (f"{split}/x",) if kind == "dense" else (
        f"{split}/x/data", f"{split}/x/indices", f"{split}/x/indptr")
    return (*x_keys, f"{split}/y", f"{split}/row_ids")


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Serialise a manifest with its checksum added."""
    crc = crc32c.crc32c(_canonical(manifest))
    return json.dumps({**manifest, "checksum": f"crc32c:{crc:08x}"}, indent=1)


def load_manifest(text: str | bytes, where: str) -> dict[str, Any]:
    """Parse, checksum and version-check a manifest read from ``where``."""
    try:
        manifest = json.loads(text)
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise DamagedDatasetError(
            f"{where}: the ooc manifest is not valid JSON ({exc}). The file is "
            "damaged; write the dataset again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise NotADatasetError(f"{where}: expected an ooc manifest; got something else.")
    check_version(manifest.get("format_version"), where)
    if not manifest.get("complete"):
        raise IncompleteDatasetError(
            f"{where}: this dataset was not finished: its writer stopped before "
            "committing. Delete it and run the write again.")
    expected = f"crc32c:{crc32c.crc32c(_canonical(manifest)):08x}"
    if manifest.get("checksum") != expected:
        raise ChecksumError(
            f"{where}: the manifest checksum does not match its contents "
            f"(stored {manifest.get('checksum')}, computed {expected}). The file "
            "is damaged; write the dataset again.")
    return manifest


def checksum_digest(block_crcs: np.ndarray) -> str:
    """The manifest's digest of an array's block checksums (npy backend)."""
    data = np.ascontiguousarray(block_crcs, dtype="<u4")
    return f"crc32c:{crc32c.crc32c(memoryview(data).cast('B')):08x}"


def check_version(version: object, where: str) -> None:
    """Raise unless ``version`` is a format version this ooc reads."""
    version = getattr(version, "item", lambda: version)()  # NumPy scalar from HDF5
    if version not in READ_VERSIONS or isinstance(version, bool):
        hint = ("upgrade ooc" if isinstance(version, int) and version > SHARDED_VERSION
                else "write the dataset again with this ooc")
        raise FormatVersionError(
            f"{where}: expected ooc format version {' or '.join(map(str, READ_VERSIONS))}; "
            f"got {version!r}. To read it, {hint}.")


class ArraySpec(NamedTuple):
    """What a stored array must be, as its manifest says."""

    dtype: np.dtype
    shape: tuple[int, ...]


class _Malformed(Exception):
    """A manifest field is missing or of the wrong kind (message: which)."""


def array_specs(manifest: dict[str, Any], where: str) -> dict[str, ArraySpec]:
    """The dtype and shape of every stored array, keyed like ``arrays``.

    Checks the manifest's structure on the way (the checksum only proves
    that the manifest is the one written), so that no later step meets a
    missing key or a name that would leave the dataset's directory.
    """
    try:
        specs: dict[str, ArraySpec] = {}
        for name, info in _field(manifest, "splits", dict, "manifest").items():
            specs.update(split_specs(name, info))
        for name, info in _field(manifest, "extras", dict, "manifest", {}).items():
            if not isinstance(name, str) or not EXTRA_NAME.match(name):
                raise _Malformed(f"extras has the name {name!r}")
            specs[f"extra/{name}"] = ArraySpec(
                _dtype(info, "biuf", f"extras.{name}"),
                (_count(info, "n", f"extras.{name}"),))
        arrays = _field(manifest, "arrays", dict, "manifest")
        if set(arrays) != set(specs):
            raise _Malformed(f"arrays lists {sorted(arrays)}, expected {sorted(specs)}")
        for key in ("classes", "feature_names"):
            names = _field(manifest, key, (list, type(None)), "manifest", None)
            if names is not None and not all(isinstance(n, str) for n in names):
                raise _Malformed(f"{key} holds a value that is not a string")
    except _Malformed as exc:
        raise _damaged(where, exc) from None
    return specs


class PartRef(NamedTuple):
    """One part of a sharded dataset, as its manifest lists it."""

    path: str
    n_rows: int
    nnz: int
    manifest: str


def shard_refs(manifest: dict[str, Any], where: str) -> tuple[
        dict[str, list[PartRef]], PartRef | None]:
    """The parts of every split of a sharded manifest, and its meta part (or None).

    Checks the structure as :func:`array_specs` does, and that the parts
    add up to their split's rows and non-zeros.
    """
    try:
        if manifest.get("layout") != "sharded" or manifest.get("format_version") != \
                SHARDED_VERSION:
            raise _Malformed("it is not a sharded (version 2) manifest")
        _field(manifest, "dataset_id", str, "manifest")
        splits: dict[str, list[PartRef]] = {}
        for name, info in _field(manifest, "splits", dict, "manifest").items():
            specs = split_specs(name, info)
            here = f"splits.{name}"
            splits[name] = [_part_ref(p, f"{here}.parts") for p in
                            _field(info, "parts", list, here)]
            if not splits[name]:
                raise _Malformed(f"{here}.parts is empty")
            nnz = specs[f"{name}/x/data"].shape[0] if f"{name}/x/data" in specs else 0
            if (sum(p.n_rows for p in splits[name]), sum(p.nnz for p in splits[name])) != (
                    info["n_rows"], nnz):
                raise _Malformed(f"the parts of {here} do not add up to its rows and nnz")
        meta = _field(manifest, "meta", (dict, type(None)), "manifest")
        extras = _field(manifest, "extras", dict, "manifest", {})
        if (meta is None) != (not extras):
            raise _Malformed("meta and extras disagree")
        return splits, None if meta is None else _part_ref({**meta, "n_rows": 0, "nnz": 0},
                                                           "meta")
    except _Malformed as exc:
        raise _damaged(where, exc) from None


def _part_ref(info: Any, here: str) -> PartRef:
    path = _field(info, "path", str, here)
    if not PART_PATH.match(path):
        raise _Malformed(f"{here} has the path {path!r}")
    return PartRef(path, _count(info, "n_rows", here), _count(info, "nnz", here),
                   _field(info, "manifest", str, here))


def split_specs(name: Any, info: Any) -> dict[str, ArraySpec]:
    """The dtype and shape of the arrays of one split, from its manifest entry."""
    if not isinstance(name, str) or not SPLIT_NAME.match(name):
        raise _Malformed(f"splits has the name {name!r}")
    here = f"splits.{name}"
    n = _count(info, "n_rows", here)
    x = _field(info, "x", dict, here)
    kind = _field(x, "kind", str, f"{here}.x")
    n_cols = _count(x, "n_cols", f"{here}.x")
    x_dtype = _dtype(x, "biuf", f"{here}.x")
    if kind == "dense":
        specs = {f"{name}/x": ArraySpec(x_dtype, (n, n_cols))}
    elif kind == "csr":
        nnz = _count(x, "nnz", f"{here}.x")
        specs = {f"{name}/x/data": ArraySpec(x_dtype, (nnz,)),
                 f"{name}/x/indices": ArraySpec(np.dtype("<i4"), (nnz,)),
                 f"{name}/x/indptr": ArraySpec(np.dtype("<i8"), (n + 1,))}
    else:
        raise _Malformed(f"{here}.x.kind is {kind!r}, expected 'dense' or 'csr'")
    counts = _field(info, "label_counts", list, here, [])
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise _Malformed(f"{here}.label_counts holds a value that is not a count")
    for column in ("y", "row_ids"):
        column_info = _field(info, column, dict, here)
        specs[f"{name}/{column}"] = ArraySpec(_dtype(column_info, "iu", f"{here}.{column}"),
                                              (n,))
    return specs


_MISSING = object()


def _damaged(where: str, exc: _Malformed) -> DamagedDatasetError:
    return DamagedDatasetError(f"{where}: the ooc manifest is malformed: {exc}. The dataset "
                               "is damaged; write it again.")


def _field(obj: Any, key: str, types: Any, here: str, default: Any = _MISSING) -> Any:
    """``obj[key]`` if it is of ``types``; ``default`` when absent, if one is given."""
    if not isinstance(obj, dict):
        raise _Malformed(f"{here} is not a JSON object")
    if key not in obj:
        if default is _MISSING:
            raise _Malformed(f"{here} has no {key!r}")
        return default
    value = obj[key]
    if not isinstance(value, types) or (isinstance(value, bool) and types is int):
        raise _Malformed(f"{here}.{key} is {value!r}")
    return value


def _count(obj: Any, key: str, here: str) -> int:
    value = _field(obj, key, int, here)
    if value < 0:
        raise _Malformed(f"{here}.{key} is {value}")
    return value


def _dtype(obj: Any, kinds: str, here: str) -> np.dtype:
    text = _field(obj, "dtype", str, here)
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        raise _Malformed(f"{here}.dtype is {text!r}, not a NumPy dtype") from None
    if dtype.kind not in kinds or dtype.shape or dtype.names:
        raise _Malformed(f"{here}.dtype is {text!r}")
    return dtype


def layout_int(layout: dict[str, Any], key: str, name: str, where: str) -> int:
    """A positive integer of a backend's ``arrays`` entry, or DamagedDatasetError."""
    try:
        value = _field(layout, name, int, f"arrays.{key}")
        if value < 1:
            raise _Malformed(f"arrays.{key}.{name} is {value}")
    except _Malformed as exc:
        raise _damaged(where, exc) from None
    return value
