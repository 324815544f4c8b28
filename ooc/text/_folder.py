"""Folder-per-class input for :mod:`ooc.text.sources` (IMDb's ``aclImdb/train/`` layout).

``ROOT/<class>/<document>.txt``: every non-hidden subdirectory of ``ROOT`` is
a class named after it, and every non-hidden ``*.txt`` file directly in it
is one document of that class.  Classes, then the files in each, are taken
in sorted (code point) order.  Files directly in ``ROOT`` (IMDb's
``urls_pos.txt``), files not ending in ``.txt`` and deeper subdirectories
are ignored.  A directory none of whose subdirectories holds a document is
read as a single class named after the directory itself, so passing
``aclImdb/train/pos aclImdb/train/neg`` reads two classes and leaves
IMDb's ``unsup`` folder out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..errors import InputFormatError
from ._common import (
    SNIFF_BYTES,
    Piece,
    Reject,
    decoder_codec,
    encoding_name,
    escape,
    is_wide,
    wide_encoding,
)


def _visible(entry: os.DirEntry[str]) -> bool:
    return not entry.name.startswith(".")


def class_dirs(root: str) -> list[tuple[str, str]]:
    """``(label, directory)`` of every class under ``root``, sorted by label."""
    with os.scandir(root) as entries:
        subdirs = sorted((e.name, e.path) for e in entries if _visible(e) and e.is_dir())
    if any(has_documents(directory) for _, directory in subdirs):
        return subdirs
    return [(os.path.basename(os.path.abspath(root)), root)]


def has_documents(directory: str) -> bool:
    """True when ``directory`` directly holds at least one document (stops at the first)."""
    return next(_documents(directory), None) is not None


def _documents(directory: str) -> Iterator[os.DirEntry[str]]:
    """Unsorted ``*.txt`` files directly in ``directory``."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".txt") and _visible(entry) and entry.is_file():
                yield entry


def document_paths(directory: str) -> list[str]:
    """Sorted paths of the documents directly in ``directory`` (names only are held)."""
    return [e.path for e in sorted(_documents(directory), key=lambda e: e.name)]


class FolderInput:
    """One folder-per-class tree; construction checks that it holds a document.

    Documents are decoded with ``encoding``; ``decode_errors`` is ``"strict"``
    (a document with an undecodable byte is a bad row) or ``"replace"``.
    """

    def __init__(self, root: str, encoding: str = "utf-8", decode_errors: str = "strict"
                 ) -> None:
        self.path = root
        self.encoding = encoding
        self.decode_errors = decode_errors
        self.classes = class_dirs(root)
        if not any(has_documents(directory) for _, directory in self.classes):
            raise InputFormatError(
                f"{root}: no documents found. Expected a folder-per-class tree such as "
                f"{os.path.join(root, 'pos', '0_9.txt')} (one *.txt file per document, one "
                f"subdirectory per class). Got {len(self.classes)} class folder(s) without "
                "any non-hidden .txt file instead.")

    def pieces(self, chunk_rows: int, reject: Reject) -> Iterator[Piece]:
        """Yield pieces of at most ``chunk_rows`` accepted documents, class by class."""
        texts: list[str] = []
        labels: list[str] = []
        skipped: list[int] = []
        for label, directory in self.classes:
            for path in document_paths(directory):
                text = read_document(path, self.encoding, self.decode_errors)
                if isinstance(text, str):
                    texts.append(text)
                    labels.append(label)
                else:
                    skipped.append(len(texts) + len(skipped))
                    reason, record = text
                    reject(path, 1, reason, record)
                if len(texts) == chunk_rows or len(skipped) == chunk_rows:
                    yield texts, labels, skipped
                    texts, labels, skipped = [], [], []
        if texts or skipped:
            yield texts, labels, skipped


def read_document(path: str, encoding: str = "utf-8", decode_errors: str = "strict"
                  ) -> str | tuple[str, str]:
    """The text of one document file, or ``(reason, record)`` when it is a bad row."""
    with open(path, "rb") as file:
        data = file.read()
    wrong = None if is_wide(encoding) else wide_encoding(path, data[:SNIFF_BYTES], encoding)
    if wrong is not None:
        return wrong, escape(data[:SNIFF_BYTES].decode("utf-8", "surrogateescape"))
    try:
        text = data.decode(decoder_codec(encoding), decode_errors)
    except UnicodeDecodeError as err:
        reason = (f"invalid {encoding_name(encoding)}: byte 0x{data[err.start]:02x} at byte "
                  f"offset {err.start}")
        return reason, data.decode("utf-8", "surrogateescape")
    if not text or text.isspace():
        return "empty text: the file is empty or blank", text
    return text
