"""Errors raised by ooc.

Every error subclasses :class:`OocError` and, where one fits, the matching
built-in exception, so ``except FileNotFoundError`` keeps working for callers
that do not know about ooc.  Messages say what was expected, what was found,
where, and what to do about it.
"""

from __future__ import annotations


class OocError(Exception):
    """Base class of every error ooc raises on purpose."""


class NotADatasetError(OocError, ValueError):
    """The path exists but holds no ooc dataset."""


class IncompleteDatasetError(OocError, ValueError):
    """The dataset's writer stopped before it committed; the data is partial."""


class FormatVersionError(OocError, ValueError):
    """The dataset was written in a format version this ooc cannot read."""


class DamagedDatasetError(OocError, OSError):
    """A stored file is missing, unreadable, or does not match the dataset's manifest."""


class ChecksumError(DamagedDatasetError):
    """Stored bytes do not match the checksum written with them."""


class DatasetChangedError(OocError, OSError):
    """A file of an open dataset was replaced or changed after :func:`ooc.open`."""


class DatasetExistsError(OocError, FileExistsError):
    """A dataset already exists where a new one was to be written."""


class OutputConflictError(OocError, FileExistsError):
    """The output path holds something that is not an ooc dataset, or an input of the run."""


class NoSpaceError(OocError, OSError):
    """The disk, a quota or a file-size limit ran out while writing a file.

    Built like an ``OSError``: ``NoSpaceError(errno, strerror, filename)``;
    ``hint`` (what to do) can be replaced by a caller that knows better.
    """

    hint = "free space and write again"

    def __str__(self) -> str:
        return (f"no space left on device while writing {self.filename} ({self.strerror}); "
                f"{self.hint}")

    def with_hint(self, hint: str) -> NoSpaceError:
        """A copy that says ``hint`` as what to do."""
        error = NoSpaceError(self.errno, self.strerror, self.filename)
        error.hint = hint
        return error


class DatasetNotFoundError(OocError, FileNotFoundError):
    """No dataset exists at the given path."""


class StorageError(OocError, OSError):
    """An object store (through fsspec) refused or failed a request."""


class ChunkError(OocError, ValueError):
    """A chunk passed to the writer does not fit the split it is appended to."""


class SplitNotFoundError(OocError, KeyError, AttributeError):
    """The dataset has no split of that name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class VectorizerFileError(OocError, ValueError):
    """A saved vectorizer file is damaged, not one, or of a newer format."""


class InputFormatError(OocError, ValueError):
    """A text input cannot be read as a whole: unsupported kind, unknown column, corrupt stream.

    Raised for problems of a file or directory as a whole (as opposed to one
    row, see :class:`BadRowError`); skipping rows cannot help with these.
    """


class InputNotFoundError(InputFormatError, FileNotFoundError):
    """A text input path does not exist."""


class MissingDependencyError(OocError, ImportError):
    """An optional dependency (matplotlib for plots, pyarrow for Parquet) is not installed."""


class UnsupportedPlatformError(OocError, OSError):
    """Datasets cannot be read or written on this platform (not POSIX: Windows)."""


class BadRowError(OocError, ValueError):
    """One data row of a text input cannot be used (ragged, empty text, missing label, ...).

    ``str(error)`` reads ``"<path>:<line>: <reason>. <what to do>"`` where
    ``line`` is the 1-based physical line on which the record starts.  The
    parts are kept as ``path``, ``line`` and ``reason`` (and as ``args``, so
    the error survives pickling between worker processes).
    """

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(path, line, reason)
        self.path = path
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: {self.reason}. Fix the row, or pass "
                "--on-bad-row skip (on_bad_row='skip') to skip such rows and list them "
                "in a rejects file.")


class NotTextsError(OocError, TypeError, ValueError):
    """A vectorizer was given something other than an iterable of ``str`` documents.

    A single ``str`` (or ``bytes``) is refused rather than read as its
    characters; subclasses both built-ins, as scikit-learn raises ``ValueError``.
    """


class CorpusError(OocError, ValueError):
    """The corpus as a whole cannot be used: empty, one class, unseen validation labels."""


class ResumeError(OocError, ValueError):
    """``--resume`` found a work directory that belongs to a different run."""


class OocWarning(UserWarning):
    """Base class of the warnings ooc gives; the CLI shows each as one line on stderr."""


class ClassSortedWarning(OocWarning):
    """The first batches of an epoch each hold one class: the dataset is stored in class order."""


class LabelFormWarning(OocWarning):
    """Labels that write the same integer differently (``'1'``, ``'1.0'``) became separate classes.

    Labels are compared as exact strings; see :mod:`ooc.text.labels`.
    ``strict_labels=True`` (``--strict-labels``) makes this a :class:`CorpusError`.
    """


class InterruptedRunError(OocError, FileExistsError):
    """An interrupted run's work directory is in the way: resume it or restart."""
