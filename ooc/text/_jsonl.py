"""JSON Lines input for :mod:`ooc.text.sources`.

One JSON object per line (lines end with ``\\n``; a ``\\r`` before it is
whitespace); the columns are the object's keys.  Text values must be
strings (``null`` counts as empty); labels may be strings or integers (not
booleans or floats) and are returned as strings.  Blank lines are passed
over and take no row id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import InputFormatError
from ._common import Piece, Reject, describe_columns, utf8_reason, valid_utf8

if TYPE_CHECKING:
    from .sources import SourceSpec

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


class JsonlInput:
    """One JSON Lines file, open."""

    def __init__(self, path: str, stream: TextIO, spec: SourceSpec) -> None:
        columns = (*(spec.text_columns or ("text",)),
                   "label" if spec.label_column is None else spec.label_column)
        if not all(isinstance(c, str) for c in columns):
            raise InputFormatError(
                f"{path}: JSON Lines rows are objects, so columns are named by key. "
                f"Expected key names. Got {columns!r} instead.")
        self.path = path
        self.stream = stream
        self.encoding = spec.encoding
        self.text_keys: tuple[str, ...] = columns[:-1]  # type: ignore[assignment]
        self.label_key: str = columns[-1]  # type: ignore[assignment]
        self.keys = dict.fromkeys(columns)  # text keys then the label key, once each

    def pieces(self, chunk_rows: int, reject: Reject) -> Iterator[Piece]:
        """Yield pieces of at most ``chunk_rows`` accepted rows, in file order."""
        texts: list[str] = []
        labels: list[str] = []
        skipped: list[int] = []
        loads, parse = json.loads, self.parse
        for line_number, line in enumerate(self.stream, 1):
            try:
                row = parse(loads(line))
            except ValueError as err:
                if not line or line.isspace():
                    continue
                row = f"invalid JSON: {getattr(err, 'msg', err)} at column {_column(err)}"
            if type(row) is tuple:
                texts.append(row[0])
                labels.append(row[1])
            else:
                skipped.append(len(texts) + len(skipped))
                reject(self.path, line_number, row, line.rstrip("\r\n"))
            if len(texts) == chunk_rows or len(skipped) == chunk_rows:
                yield texts, labels, skipped
                texts, labels, skipped = [], [], []
        if texts or skipped:
            yield texts, labels, skipped

    def parse(self, obj: Any) -> tuple[str, str] | str:
        """``(text, label)`` from one decoded line, or the reason it is a bad row."""
        if type(obj) is not dict:
            return f"not a JSON object: the line holds a JSON {json_type(obj)}"
        missing = [key for key in self.keys if key not in obj]
        if missing:
            return f"missing key: {missing[0]!r} (keys present: {describe_columns(obj) or 'none'})"
        label = obj[self.label_key]
        if type(label) is str:
            label = label.strip()
        elif type(label) is int:
            label = str(label)
        elif label is None:
            label = ""
        else:
            return (f"wrong type: label {self.label_key!r} must be a string or an integer, "
                    f"got a JSON {json_type(label)}")
        parts = [obj[key] for key in self.text_keys]
        for key, value in zip(self.text_keys, parts, strict=True):
            if type(value) is not str and value is not None:
                return (f"wrong type: text {key!r} must be a string, "
                        f"got a JSON {json_type(value)}")
        if len(parts) == 1:
            return self._checked(parts[0] or "", label)
        return self._checked(" ".join(part or "" for part in parts), label)

    def _checked(self, text: str, label: str) -> tuple[str, str] | str:
        """``(text, label)`` when both decoded and are not empty, else the reason."""
        if not (text.isascii() or valid_utf8(text)):
            return utf8_reason(text, "the text", self.encoding)
        if not (label.isascii() or valid_utf8(label)):
            return utf8_reason(label, "the label", self.encoding)
        if not label:
            return f"missing label: {self.label_key!r} is empty or null"
        if not text or text.isspace():
            keys = " and ".join(repr(k) for k in self.text_keys)
            return f"empty text: {keys} {'is' if len(self.text_keys) == 1 else 'are'} empty"
        return text, label


def _column(err: ValueError) -> int:
    return getattr(err, "colno", 0)
