"""CSV and TSV input for :mod:`ooc.text.sources`.

Quoting follows RFC 4180 as Python's :mod:`csv` module and pandas write it:
fields may be quoted with ``"``, a quote inside a quoted field is doubled,
and quoted fields may hold delimiters and newlines.  The same rules apply to
TSV.  The reader runs in ``strict`` mode, so a malformed quote (``"a"b``) or
a quoted field still open at the end of the file (a file cut off mid-row)
is a bad row, never silently repaired.  Blank lines are not data rows: they
are passed over and take no row id.

A record the parser cannot read may span many lines: a stray opening quote
swallows the lines after it up to the next quote (or the end of the file).
Each of those lines is a bad row of its own, counted and listed: they may
have been rows, or the lines of one long text, and reading them again as
rows could invent rows (and labels) from the middle of a text.  Each
source line is thus either in a row or listed as rejected.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, TextIO

from ..errors import InputFormatError
from ._common import (
    Column,
    Piece,
    Reject,
    describe_columns,
    escape,
    remember,
    utf8_reason,
    valid_utf8,
)

if TYPE_CHECKING:
    from .sources import SourceSpec

FIELD_LIMIT = 16 * 2**20
"""Largest field, in characters, that the CSV reader accepts (csv's default is 128 KiB).

Documents longer than 128 KiB are real (long reviews, articles, whole book
chapters), so the limit is raised; 16 Mi characters is above any single
document we expect (a long novel is 2-4 MB) yet bounds what a stray opening
quote can make the parser hold before it reports the row: about 16 Mi
characters, 64 MiB at 4 bytes a character, instead of the rest of the file,
and as much again for the raw lines of that record, kept to read them again.
The limit is process-wide in the csv module; it is only ever raised.
"""


@dataclass(frozen=True)
class Layout:
    """Where a file's columns are: the row width, text column indexes, label index."""

    width: int
    text: tuple[int, ...]
    label: int
    header: tuple[str, ...] | None

    def name(self, index: int) -> str:
        """How messages call column ``index``: ``column 'text'`` or ``column 2``."""
        if self.header is None:
            return f"column {index}"
        return f"column '{escape(self.header[index].strip())}'"


def raise_field_limit() -> None:
    """Raise csv's process-wide field size limit to :data:`FIELD_LIMIT` (never lower it)."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def resolve(path: str, column: Column, layout_header: list[str] | None, width: int,
            where: str = "header") -> int:
    """0-based index of ``column`` (a header name or an index) in a row of ``width`` fields.

    ``where`` is what holds the names, for messages (``"header"``, ``"schema"``).
    """
    if isinstance(column, int):
        if not -width <= column < width:
            source = where if layout_header is not None else "first row"
            raise InputFormatError(
                f"{path}: column index {column} is out of range. Expected an index from 0 "
                f"to {width - 1}: the {source} has {width} columns.")
        return column % width
    if layout_header is None:
        raise InputFormatError(
            f"{path}: column {column!r} is a name, but the file is read without a header. "
            "Name columns by 0-based index (e.g. --text-column 1 --label-column 0), or read "
            "the first row as a header.")
    hits = [i for i, name in enumerate(layout_header) if name.strip() == column]
    if len(hits) != 1:
        problem = "no column named" if not hits else f"{len(hits)} columns named"
        raise InputFormatError(
            f"{path}: {problem} {column!r} in the {where}. Available columns: "
            f"{describe_columns(layout_header)}. Pass --text-column/--label-column with one "
            "of these names or a 0-based index.")
    return hits[0]


class CsvInput:
    """One CSV or TSV file, open: its layout is read on construction."""

    def __init__(self, path: str, stream: TextIO, spec: SourceSpec, delimiter: str) -> None:
        raise_field_limit()
        self.path = path
        self.encoding = spec.encoding
        self.record: list[str] = []  # raw lines of the record being parsed
        self.reader = csv.reader(remember(stream, self.record), delimiter=delimiter,
                                 quotechar='"', doublequote=True, strict=True)
        first, lines_before = self._first_row()
        if spec.header:
            self.record.clear()
        self.first: list[list[str]] = []
        self.layout: Layout | None = None
        self.start = self.reader.line_num  # physical lines before the first data row
        if first is None:
            return
        if spec.header:
            self.layout = self._layout(spec, first, tuple(first))
        else:
            self.first = [first]
            self.start = lines_before
            self.layout = self._layout(spec, first, None)

    def _first_row(self) -> tuple[list[str] | None, int]:
        """The first non-blank row (header or first data row) and the lines before it."""
        lines_before = 0
        try:
            for row in self.reader:
                if row:
                    return row, lines_before
                lines_before = self.reader.line_num
                self.record.clear()
        except csv.Error as err:
            raise InputFormatError(
                f"{self.path}:{lines_before + 1}: cannot parse the first row ({err}). "
                "Expected a CSV/TSV header or data row.") from err
        return None, lines_before

    def _layout(self, spec: SourceSpec, first: list[str], header: tuple[str, ...] | None
                ) -> Layout:
        names = list(header) if header is not None else None
        text_columns = spec.text_columns or ("text",)
        label_column = "label" if spec.label_column is None else spec.label_column
        text = tuple(resolve(self.path, c, names, len(first)) for c in text_columns)
        label = resolve(self.path, label_column, names, len(first))
        return Layout(len(first), text, label, header)

    def pieces(self, chunk_rows: int, reject: Reject) -> Iterator[Piece]:
        """Yield pieces of at most ``chunk_rows`` accepted rows, in file order."""
        if self.layout is None:
            return
        layout, reader, clear = self.layout, self.reader, self.record.clear
        width, label_col, text_col = layout.width, layout.label, layout.text[0]
        join = None if len(layout.text) == 1 else _joiner(layout.text)
        rows = chain(self.first, reader)
        texts: list[str] = []
        labels: list[str] = []
        skipped: list[int] = []
        prev_end = self.start
        while True:
            try:
                for fields in rows:
                    if len(fields) == width:
                        text = fields[text_col] if join is None else join(fields)
                        label = fields[label_col].strip()
                        if (label and text and not text.isspace()
                                and (text.isascii() or valid_utf8(text))
                                and (label.isascii() or valid_utf8(label))):
                            texts.append(text)
                            labels.append(label)
                            prev_end = reader.line_num
                            clear()
                            if len(texts) == chunk_rows:
                                yield texts, labels, skipped
                                texts, labels, skipped = [], [], []
                            continue
                    elif not fields:  # a blank line
                        prev_end = reader.line_num
                        clear()
                        continue
                    skipped.append(len(texts) + len(skipped))
                    self._reject(reject, prev_end, _diagnose(fields, layout, self.encoding))
                    prev_end = reader.line_num
                    if len(skipped) >= chunk_rows:
                        yield texts, labels, skipped
                        texts, labels, skipped = [], [], []
            except csv.Error as err:
                for _ in range(self._broken(reject, prev_end, _csv_error_reason(err))):
                    skipped.append(len(texts) + len(skipped))
                prev_end = reader.line_num
                continue
            break
        if texts or skipped:
            yield texts, labels, skipped

    def _reject(self, reject: Reject, prev_end: int, reason: str) -> None:
        """Report the record that follows reader line ``prev_end`` as bad."""
        record = "".join(self.record)
        self.record.clear()
        reject(self.path, prev_end + 1, reason, record.rstrip("\r\n"))

    def _broken(self, reject: Reject, prev_end: int, reason: str) -> int:
        """Report each line of a record the parser failed on; return how many."""
        lines = list(self.record) or [""]
        self.record.clear()
        first = prev_end + 1
        reject(self.path, first, reason, lines[0].rstrip("\r\n"))
        for k, line in enumerate(lines[1:], first + 1):
            reject(self.path, k, f"inside the unreadable record of line {first}",
                   line.rstrip("\r\n"))
        return len(lines)


def _joiner(columns: tuple[int, ...]) -> Callable[[list[str]], str]:
    """A function joining the given columns of a row with single spaces."""
    get = itemgetter(*columns)

    def join(fields: list[str]) -> str:
        return " ".join(get(fields))

    return join


def _diagnose(fields: list[str], layout: Layout, encoding: str) -> str:
    """Why a parsed row failed the fast acceptance test."""
    if len(fields) != layout.width:
        source = "the header" if layout.header is not None else "the first row"
        return (f"ragged row: {len(fields)} fields, expected {layout.width} "
                f"(as in {source})")
    for index in (*layout.text, layout.label):
        if not valid_utf8(fields[index]):
            return utf8_reason(fields[index], layout.name(index), encoding)
    if not fields[layout.label].strip():
        return f"missing label: {layout.name(layout.label)} is empty"
    names = " and ".join(layout.name(i) for i in layout.text)
    return f"empty text: {names} {'is' if len(layout.text) == 1 else 'are'} empty or blank"


def _csv_error_reason(err: csv.Error) -> str:
    message = str(err)
    if message.startswith("unexpected end of data"):
        return ("unterminated quoted field: the file ends inside a quoted field "
                "(cut off mid-row, or a stray opening quote)")
    if message.startswith("field larger than field limit"):
        return (f"field too large: over {csv.field_size_limit()} characters "
                "(or a stray opening quote)")
    return f"malformed CSV: {message}"
