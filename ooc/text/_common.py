"""Pieces shared by the per-format readers of :mod:`ooc.text.sources` and the vectorizers.

Every reader yields *pieces* ``(texts, labels, skipped)``: the rows it
accepted, in source order, and the positions (among the rows the piece
consumed, accepted and skipped together) of the rows it skipped.  The
number of rows a piece consumed is ``len(texts) + len(skipped)``;
:func:`ooc.text.sources.read_rows` turns that into row ids.  A reader calls
``reject(path, line, reason, record)`` for every bad row; ``reject`` raises
:class:`~ooc.errors.BadRowError` or records the skip and returns.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import NotTextsError

Piece = tuple[list[str], list[str], list[int]]
Reject = Callable[[str, int, str, str], None]
Column = str | int

RECORD_CHARS = 200
"""A bad row's ``record`` keeps at most this many characters of the raw text."""


def valid_utf8(value: str) -> bool:
    """True when ``value`` holds no surrogate, i.e. every source byte was valid UTF-8.

    Inputs are decoded with ``errors="surrogateescape"``, which turns each
    invalid byte into one surrogate code point (U+DC80..U+DCFF) instead of
    failing the whole file, so rows stay aligned with their line numbers.
    Encoding is the fastest way to find them (about 5x a regex search).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_reason(value: str, where: str, encoding: str = "utf-8") -> str:
    """Describe the first undecodable byte (or lone surrogate) of ``value`` for a bad row.

    ``encoding`` is the one the input was decoded with, named in the reason
    (``invalid UTF-8: ...``, ``invalid cp1252: ...``).
    """
    name = encoding_name(encoding)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(value[err.start])
        if 0xDC80 <= code <= 0xDCFF:
            return f"invalid {name}: byte 0x{code - 0xDC00:02x} in {where}"
        return f"invalid {name}: lone surrogate U+{code:04X} in {where}"
    raise AssertionError("utf8_reason called on valid text")  # pragma: no cover


def printable(value: str) -> str:
    """``value`` with undecodable bytes shown as ``\\xNN`` so it can be printed or written."""
    if valid_utf8(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that came from a JSON escape
        return value.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters a terminal acts on (C0/C1 controls, line separators, bidi overrides)."""


def escape(text: str) -> str:
    """``text`` made safe to quote in a message: undecodable bytes and controls as escapes.

    Bytes that were not valid UTF-8 show as ``\\xNN`` (as :func:`printable`),
    control characters (NUL, ESC, newlines, ...) as ``\\xNN`` or ``\\uNNNN``,
    so user text quoted in an error never moves the cursor or clears a screen.
    """
    return _CONTROLS.sub(_escaped, printable(text))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shorten(record: str) -> str:
    """``record`` truncated to :data:`RECORD_CHARS` characters, made printable."""
    if len(record) > RECORD_CHARS:
        record = record[:RECORD_CHARS] + "..."
    return printable(record)


def remember(lines: Iterable[str], recent: list[str]) -> Iterator[str]:
    """Yield ``lines`` unchanged, appending each to ``recent`` first.

    Lets a CSV reader quote, or read again, the raw lines of a bad record
    without re-reading the (possibly compressed) file; the reader clears
    ``recent`` after each record.  One generator step a line, lost in the
    noise of csv parsing when measured.
    """
    push = recent.append
    for line in lines:
        push(line)
        yield line


def describe_columns(names: Iterable[str]) -> str:
    """Available columns (or labels) for an error message: ``'a', 'b', 'c'``, escaped."""
    return ", ".join(f"'{escape(name)}'" for name in names)


DECODE_ERRORS = ("strict", "replace")
"""What to do with bytes the encoding cannot decode: a bad row, or U+FFFD in the text."""


def check_decoding(encoding: str, decode_errors: str) -> None:
    """Raise ValueError unless ``encoding`` is a text codec and ``decode_errors`` is known."""
    if decode_errors not in DECODE_ERRORS:
        raise ValueError(f"decode_errors must be 'strict' or 'replace'. Got {decode_errors!r} "
                         "instead.")
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=encoding)  # refuses bytes codecs ('base64')
    except (LookupError, TypeError):
        raise ValueError(f"encoding {encoding!r} is not a text encoding Python knows. Expected "
                         "a codec name such as utf-8, latin-1, cp1252 or utf-16.") from None


def encoding_name(encoding: str) -> str:
    """How messages name ``encoding``: ``UTF-8`` for any spelling of it, else as given."""
    return "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding


def decoder_codec(encoding: str) -> str:
    """The codec to decode with: UTF-8 also drops a leading byte order mark (``utf-8-sig``)."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def is_wide(encoding: str) -> bool:
    """True for UTF-16 and UTF-32, whose files :func:`wide_encoding` would refuse."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


SNIFF_BYTES = 64
"""Bytes at the start of an input that :func:`wide_encoding` looks at."""

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32", "UTF-32 LE"), (b"\x00\x00\xfe\xff", "UTF-32", "UTF-32 BE"),
         (b"\xff\xfe", "UTF-16", "UTF-16 LE"), (b"\xfe\xff", "UTF-16", "UTF-16 BE"))
"""Byte order marks, UTF-32 LE's before UTF-16 LE's (which it starts with)."""


def wide_encoding(path: str, head: bytes, encoding: str = "utf-8") -> str | None:
    """Why a file starting with ``head`` looks UTF-16/32 encoded, and what to do; else None.

    A UTF-16 or UTF-32 byte order mark, or a start of which a quarter or more
    of the bytes are NUL (ASCII text in UTF-16 is half NULs), tells.  Read as
    UTF-8 (or any 8-bit encoding) such a file gives column names full of
    NULs, so it is refused with the ``--encoding`` to pass or the conversion
    to run instead.  Callers skip this check when the encoding is wide.
    """
    head = head[:SNIFF_BYTES]
    for bom, iconv, name in _BOMS:
        if head.startswith(bom):
            return _convert(path, iconv, f"it starts with a {name} byte order mark", encoding)
    if len(head) >= 4 and head.count(0) * 4 >= len(head):
        iconv = "UTF-16LE" if head[1::2].count(0) >= head[0::2].count(0) else "UTF-16BE"
        why = f"{head.count(0)} of its first {len(head)} bytes are NUL"
        return _convert(path, iconv, why, encoding)
    return None


_DECOMPRESS = {".gz": "zcat", ".bz2": "bzcat", ".xz": "xzcat"}


def _convert(path: str, iconv: str, why: str, encoding: str) -> str:
    """The message of :func:`wide_encoding`, with an ``iconv`` command for this file."""
    name, suffix = os.path.splitext(os.path.basename(path))
    cat = _DECOMPRESS.get(suffix.lower())
    stem, dot, ext = (name if cat else name + suffix).partition(".")
    convert = f"iconv -f {iconv} -t UTF-8"
    source = f"'{escape(path)}'"
    command = f"{cat} {source} | {convert}" if cat else f"{convert} {source}"
    return (f"the file looks {iconv[:6]} encoded ({why}), but it is read as "
            f"{encoding_name(encoding)}. Pass --encoding {iconv} (encoding='{iconv}'), or "
            f"convert it first, e.g. {command} > '{escape(stem)}.utf8{dot}{escape(ext)}'")


def text_list(texts: Any) -> list[str]:
    """``texts`` as a list of documents; a ``str``, ``bytes`` or non-iterable is refused.

    Iterating a ``str`` gives its characters, which would silently become one
    document each (one review, 18 rows), so it raises
    :class:`~ooc.errors.NotTextsError` as scikit-learn's vectorizers do.
    """
    if isinstance(texts, str | bytes | bytearray | memoryview) or not isinstance(texts, Iterable):
        kind = "string" if isinstance(texts, str) else type(texts).__name__
        raise NotTextsError(f"Iterable over raw text documents expected, {kind} object "
                            "received. Pass a list of str, e.g. [text].")
    docs = list(texts)
    for i, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise NotTextsError(f"Iterable over raw text documents expected; document {i} "
                                f"is a {type(doc).__name__} object, not a str.")
    return docs
