"""Raw text sources: stream labelled text corpora as chunks of rows, in source order.

This is the first stage of ``ooc preprocess``.  :func:`read_rows` reads the
inputs of a :class:`SourceSpec` and yields :class:`Rows` of ``chunk_rows``
rows each (the last one shorter); memory is bounded by the chunk, never by
the file.

Inputs
------
* **CSV / TSV** (``.csv``, ``.tsv``): RFC 4180 quoting (quoted fields may
  hold delimiters, doubled quotes and newlines), a header row naming the
  columns unless ``header=False``, CRLF or LF line ends, an optional UTF-8
  byte order mark, a last line with or without a newline.  See
  :mod:`ooc.text._csv`.
* **JSON Lines** (``.jsonl``, ``.ndjson``): one object per line, columns
  are keys, integer labels allowed.  See :mod:`ooc.text._jsonl`.
* **Parquet** (``.parquet``): columns by schema name, streamed by row
  group; string text, string or integer labels; a null is a bad row whose
  ``line`` is the 1-based row number.  See :mod:`ooc.text._parquet`.
* **Folder-per-class trees** (a directory): ``ROOT/<label>/<doc>.txt``, one
  document per file, like IMDb's ``aclImdb/train/``.  See
  :mod:`ooc.text._folder`.
* ``.gz``, ``.bz2`` and ``.xz`` after a text file's extension
  (``reviews.csv.gz``) are decompressed on the fly (Parquet files are
  compressed inside).

Rows
----
Text is UTF-8 (a leading byte order mark is dropped) unless
``encoding`` names another Python codec (``latin-1``, ``cp1252``,
``utf-16``, ...).  Bytes the encoding cannot decode make a bad row
(``decode_errors="strict"``) or become U+FFFD in the text
(``"replace"``, scikit-learn's ``decode_error='replace'``).  Unless the
encoding is UTF-16 or UTF-32, a file that starts with a UTF-16 or UTF-32
byte order mark, or with many NUL bytes (UTF-16 without one), is refused
with the ``encoding`` to pass and the ``iconv`` command that converts it;
such a document of a folder tree is a bad row.
Several inputs form one corpus: a row's id is the 0-based
index of the data row (header and blank lines excluded) across the inputs
taken in the order given; ``limit`` keeps only the rows with ids below it.
Several text columns are joined with one space.
Labels are strings exactly as written, surrounding whitespace stripped
(JSON integers become their decimal string).

Bad rows
--------
A row that cannot be used is a *bad row*: ragged (another number of fields
than the header, or than the first row without a header), bytes the
encoding cannot decode in a used field (``decode_errors="strict"``), empty
or blank text, missing label, malformed CSV quoting, a quoted field still
open at the end of the file (a file cut off mid-row), a
field over :data:`ooc.text._csv.FIELD_LIMIT` characters, a JSON Lines line
that is not a JSON object or lacks a key, a Parquet row with a null text or
label.  With ``on_bad_row="error"`` the first one raises
:class:`~ooc.errors.BadRowError` naming the file and the 1-based physical
line on which the record starts (Parquet: row number); with ``"skip"`` it is
passed to ``on_skip`` (e.g. a :class:`RejectLog`) and reading goes on; a
skipped row still takes its row id, so ids keep pointing at the source.
Problems of a whole input (missing file, unsupported kind, unknown column,
an empty folder tree, a truncated or corrupt compressed stream, a UTF-16 or
UTF-32 file read as another encoding, a UTF-16 or UTF-32 file the strict
decoder cannot read, a Parquet column of the wrong type) raise
:class:`~ooc.errors.InputFormatError` whatever ``on_bad_row`` says.

A CSV record the parser fails on (a stray opening quote that swallowed the
lines after it, a malformed quote, a field over the limit) is a bad row of
its first line only; the lines after it are read again, so swallowed rows
are kept when they parse and every source line is either in a row or
listed as a bad row of its own.

Limits: a CSV record cut off inside its last *unquoted* field cannot be
told from a complete last line without a newline.  A file cut off inside a
multi-line quoted field lists each line of the cut record as a bad row.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Protocol

import numpy as np

from ..errors import BadRowError, InputFormatError, InputNotFoundError, OutputConflictError
from ._common import (
    SNIFF_BYTES,
    Column,
    Piece,
    Reject,
    check_decoding,
    decoder_codec,
    is_wide,
    shorten,
    wide_encoding,
)
from ._csv import CsvInput
from ._folder import FolderInput
from ._jsonl import JsonlInput
from ._parquet import ParquetInput

__all__ = ["BadRow", "RejectLog", "Rows", "SourceSpec", "input_kind", "read_rows"]

FILE_KINDS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet"}
"""File extension -> reader."""

COMPRESSIONS: dict[str, Callable[[str], IO[bytes]]] = {
    ".gz": gzip.GzipFile,
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}
"""Compression suffix -> opener of the decompressed byte stream."""

_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class SourceSpec:
    """What to read and how: the inputs, the columns, and what to do with bad rows.

    Parameters
    ----------
    paths
        Files and/or directories, read in this order (any iterable of
        path-likes is accepted and stored as a tuple of ``str``).
    text_columns
        Header names or 0-based indexes of the text column(s), joined with a
        single space; ``()`` means the column named ``"text"``.
    label_column
        Name or index of the label column; ``None`` means ``"label"``.
    header
        CSV/TSV only: the first row names the columns.  Without a header,
        columns must be given by index.
    delimiter
        CSV/TSV only: one character; ``None`` means a tab for ``.tsv`` and a
        comma for ``.csv``.
    on_bad_row
        ``"error"`` (stop at the first bad row) or ``"skip"``.
    encoding
        The inputs' text encoding, any Python codec name (``"latin-1"``,
        ``"cp1252"``, ``"utf-16"``, ...).  ``"utf-8"`` also drops a byte
        order mark.
    decode_errors
        ``"strict"``: a row with bytes the encoding cannot decode is a bad
        row; ``"replace"``: they become U+FFFD and the row is kept.
    limit
        Read only the rows with id below ``limit`` (the first ``limit``
        data rows of the inputs taken in order, bad rows included), e.g. to
        try settings; ``None`` reads everything.
    """

    paths: tuple[str, ...]
    text_columns: tuple[str | int, ...] = ()
    label_column: str | int | None = None
    header: bool = True
    delimiter: str | None = None
    on_bad_row: str = "error"
    encoding: str = "utf-8"
    decode_errors: str = "strict"
    limit: int | None = None

    def __post_init__(self) -> None:
        paths = tuple(os.fspath(p) for p in _as_tuple(self.paths, (str, os.PathLike)))
        if not paths:
            raise ValueError("SourceSpec.paths is empty. Expected at least one file or "
                             "directory.")
        text_columns = _as_tuple(self.text_columns, (str, int))
        for column in (*text_columns, self.label_column):
            _check_column(column)
        if self.on_bad_row not in ("error", "skip"):
            raise ValueError(f"on_bad_row must be 'error' or 'skip'. Got {self.on_bad_row!r} "
                             "instead.")
        if self.delimiter is not None and (
                not isinstance(self.delimiter, str) or len(self.delimiter) != 1
                or self.delimiter in '"\r\n'):
            raise ValueError("delimiter must be one character other than a quote or a line "
                             f"break. Got {self.delimiter!r} instead.")
        if not isinstance(self.header, bool):
            raise TypeError(f"header must be True or False. Got {self.header!r} instead.")
        check_decoding(self.encoding, self.decode_errors)
        check_limit(self.limit)
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "text_columns", text_columns)


def check_limit(limit: int | None) -> None:
    """Raise ValueError unless ``limit`` is None or a positive int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"limit must be a positive int or None. Got {limit!r} instead.")


def _as_tuple(value: Any, scalar_types: tuple[type, ...]) -> tuple[Any, ...]:
    """``value`` as a tuple; a single scalar (a str, say) becomes a 1-tuple."""
    return (value,) if isinstance(value, scalar_types) else tuple(value)


def _check_column(column: Column | None) -> None:
    if column is None or (isinstance(column, str) and column):
        return
    if isinstance(column, int) and not isinstance(column, bool):
        return
    raise TypeError("A column is a header name (non-empty str) or a 0-based index (int). "
                    f"Got {column!r} instead.")


@dataclass(frozen=True)
class Rows:
    """One chunk of accepted rows, in source order.

    Attributes
    ----------
    row_ids
        int64: the 0-based index of each data row (header excluded) across
        the inputs in the order given.  Skipped rows take ids too, so ids
        may jump.
    texts
        The text of each row (several text columns joined with one space).
    labels
        Each row's label as written, surrounding whitespace stripped.
    """

    row_ids: np.ndarray
    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, and why.

    Attributes
    ----------
    path
        The input file (for a folder tree, the document's file).
    line
        The 1-based physical line on which the record starts (Parquet: the
        1-based row number in the file).
    reason
        ``"<category>: <details>"``, e.g. ``"ragged row: 2 fields, expected
        3 (as in the header)"``; see :attr:`category`.
    record
        The raw text of the record, cut to about 200 characters, with
        undecodable bytes shown as ``\\xNN``.
    """

    path: str
    line: int
    reason: str
    record: str

    @property
    def category(self) -> str:
        """The reason without its details: ``"ragged row"``, ``"empty text"``, ..."""
        return self.reason.partition(":")[0]


REJECTS_HEADER = ["path", "line", "reason", "record"]


def check_rejects_path(path: str | os.PathLike[str]) -> None:
    """Refuse to write a rejects file over anything but an earlier rejects file."""
    try:
        with open(path, "rb") as f:
            first = f.readline(64)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        first = b""
    if first.rstrip(b"\r\n") != ",".join(REJECTS_HEADER).encode():
        raise OutputConflictError(
            f"{os.fspath(path)}: the rejects file of this run would replace this, which ooc did "
            "not write. Move it away, or choose another --out.")


class RejectLog:
    """Write skipped rows to a CSV file (``path,line,reason,record``) and count them.

    Use as a context manager and pass it as ``on_skip``::

        with RejectLog("out.rejects.csv") as rejects:
            for rows in read_rows(spec, on_skip=rejects):
                ...
        print(rejects.count, rejects.by_reason)

    ``by_reason`` counts skipped rows by :attr:`BadRow.category`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.count = 0
        self.by_reason: Counter[str] = Counter()
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> RejectLog:
        check_rejects_path(self.path)
        self._file = open(self.path, "w", newline="", encoding="utf-8",
                          errors="backslashreplace")
        self._writer = csv.writer(self._file)
        self._writer.writerow(REJECTS_HEADER)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __call__(self, bad: BadRow) -> None:
        """Record one skipped row."""
        if self._file is None:
            raise ValueError(f"RejectLog({self.path!r}) is not open; use it in a with-block.")
        self._writer.writerow([bad.path, bad.line, bad.reason, bad.record])
        self.count += 1
        self.by_reason[bad.category] += 1


def read_rows(spec: SourceSpec, chunk_rows: int = 10_000,
              on_skip: Callable[[BadRow], None] | None = None) -> Iterator[Rows]:
    """Stream the rows of ``spec``'s inputs as :class:`Rows` of ``chunk_rows`` rows.

    Every input is checked before this returns (it exists, its kind is
    supported, CSV headers hold the named columns, folder trees hold a
    document), so such mistakes fail before the first row is read.

    Parameters
    ----------
    spec
        The inputs and how to read them.
    chunk_rows
        Rows per chunk; every chunk but the last has exactly this many.
    on_skip
        Called with a :class:`BadRow` for each row skipped when
        ``spec.on_bad_row == "skip"`` (e.g. a :class:`RejectLog`).

    Raises
    ------
    BadRowError
        At the first bad row, when ``spec.on_bad_row == "error"``.
    InputFormatError
        For a missing or unsupported input, an unknown column, an empty
        folder tree, or a truncated or corrupt compressed file.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int. Got {chunk_rows!r} instead.")
    for path in spec.paths:
        with _opened(path, spec):
            pass
    return _rechunk(_numbered(spec, chunk_rows, on_skip), chunk_rows)


def input_kind(path: str) -> tuple[str, str | None]:
    """``(kind, compression)`` of an input: ``"csv"``, ``"jsonl"``, ``"parquet"``, ``"folder"``.

    Raises :class:`~ooc.errors.InputFormatError` for a missing path or an
    unsupported extension.
    """
    if os.path.isdir(path):
        return "folder", None
    if not os.path.exists(path):
        raise InputNotFoundError(f"{path}: no such file or directory. Expected an existing "
                                 "input file or folder-per-class directory.")
    stem, suffix = os.path.splitext(path.lower())
    compression = suffix if suffix in COMPRESSIONS else None
    if compression is not None:
        suffix = os.path.splitext(stem)[1]
    if suffix not in FILE_KINDS or (compression and FILE_KINDS[suffix] == "parquet"):
        got = suffix + (compression or "") if suffix else "no extension"
        raise InputFormatError(
            f"{path}: unsupported input kind. Expected a .csv, .tsv, .jsonl or .ndjson file "
            "(optionally .gz, .bz2 or .xz compressed), a .parquet file (not compressed "
            f"again) or a folder-per-class directory. Got {got!r} instead.")
    return FILE_KINDS[suffix], compression


class _Source(Protocol):
    def pieces(self, chunk_rows: int, reject: Reject) -> Iterator[Piece]: ...


@contextmanager
def _opened(path: str, spec: SourceSpec) -> Iterator[_Source]:
    """The open reader of one input; decompression errors become InputFormatError."""
    kind, compression = input_kind(path)
    if kind == "folder":
        yield FolderInput(path, spec.encoding, spec.decode_errors)
        return
    if kind == "parquet":
        yield ParquetInput(path, spec)
        return
    binary = COMPRESSIONS[compression](path) if compression else open(path, "rb")  # noqa: SIM115
    newline = "" if kind == "csv" else "\n"
    # strict: an undecodable byte becomes a surrogate, so only its row is bad (file:line)
    errors = "surrogateescape" if spec.decode_errors == "strict" else "replace"
    stream = io.TextIOWrapper(binary, encoding=decoder_codec(spec.encoding), errors=errors,
                              newline=newline)
    try:
        with stream:
            wrong = (None if is_wide(spec.encoding)
                     else wide_encoding(path, binary.peek(SNIFF_BYTES), spec.encoding))
            if wrong is not None:
                raise InputFormatError(f"{path}: {wrong}.")
            if kind == "jsonl":
                yield JsonlInput(path, stream, spec)
            else:
                yield CsvInput(path, stream, spec, _delimiter(path, spec))
    except UnicodeDecodeError as err:  # surrogateescape cannot carry bytes < 0x80 (UTF-16/32)
        raise InputFormatError(
            f"{path}: not valid {spec.encoding} ({err.reason}). Check --encoding, or pass "
            "--decode-errors replace to read undecodable bytes as U+FFFD.") from err
    except _STREAM_ERRORS as err:
        if compression is None:
            raise
        raise InputFormatError(
            f"{path}: the {compression[1:]} stream is truncated or corrupt ({err}). Expected "
            f"a complete {compression} file; re-create or re-download it.") from err


def _delimiter(path: str, spec: SourceSpec) -> str:
    if spec.delimiter is not None:
        return spec.delimiter
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return "\t" if name.endswith(".tsv") else ","


def _rejecter(on_bad_row: str, on_skip: Callable[[BadRow], None] | None) -> Reject:
    """The ``reject(path, line, reason, record)`` callback the per-format readers call."""
    def reject(path: str, line: int, reason: str, record: str) -> None:
        if on_bad_row == "error":
            raise BadRowError(path, line, reason)
        if on_skip is not None:
            on_skip(BadRow(path, line, reason, shorten(record)))

    return reject


def _numbered(spec: SourceSpec, chunk_rows: int, on_skip: Callable[[BadRow], None] | None
              ) -> Iterator[tuple[np.ndarray, list[str], list[str]]]:
    """``(row_ids, texts, labels)`` pieces of every input in turn, ids running on.

    With ``spec.limit``, pieces stop at row id ``limit``.  A reader reads up
    to a piece ahead, so its bad rows are held until their ids are known and
    only those below the limit are reported.
    """
    reject = _rejecter(spec.on_bad_row, on_skip)
    held: list[tuple[str, int, str, str]] = []

    def hold(path: str, line: int, reason: str, record: str) -> None:
        held.append((path, line, reason, record))

    collect = reject if spec.limit is None else hold
    next_id = 0
    for path in spec.paths:
        with _opened(path, spec) as source:
            for texts, labels, skipped in source.pieces(chunk_rows, collect):
                consumed = len(texts) + len(skipped)
                ids = np.arange(next_id, next_id + consumed, dtype=np.int64)
                if skipped:
                    ids = np.delete(ids, skipped)
                if spec.limit is not None:
                    _report_held(held, skipped, spec.limit - next_id, reject)
                    kept = int(np.searchsorted(ids, spec.limit))
                    ids, texts, labels = ids[:kept], texts[:kept], labels[:kept]
                next_id += consumed
                if texts:
                    yield ids, texts, labels
                if spec.limit is not None and next_id >= spec.limit:
                    return


def _report_held(held: list[tuple[str, int, str, str]], skipped: list[int], below: int,
                 reject: Reject) -> None:
    """Report the held bad rows of a piece whose position is below ``below``; forget all."""
    for position, bad in zip(skipped, held, strict=True):  # one reject call per skipped row
        if position < below:
            reject(*bad)
    held.clear()


def _rechunk(pieces: Iterable[tuple[np.ndarray, list[str], list[str]]], chunk_rows: int
             ) -> Iterator[Rows]:
    """Regroup pieces (which end at file boundaries) into chunks of exactly ``chunk_rows``."""
    ids: list[np.ndarray] = []
    texts: list[str] = []
    labels: list[str] = []
    for piece_ids, piece_texts, piece_labels in pieces:
        if not texts and len(piece_texts) == chunk_rows:
            yield Rows(piece_ids, piece_texts, piece_labels)
            continue
        ids.append(piece_ids)
        texts.extend(piece_texts)
        labels.extend(piece_labels)
        while len(texts) >= chunk_rows:
            all_ids = np.concatenate(ids)
            yield Rows(all_ids[:chunk_rows].copy(), texts[:chunk_rows], labels[:chunk_rows])
            ids, texts, labels = [all_ids[chunk_rows:]], texts[chunk_rows:], labels[chunk_rows:]
    if texts:
        yield Rows(np.concatenate(ids), texts, labels)
