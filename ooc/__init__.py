"""ooc: out-of-core datasets for training on data that does not fit in memory.

Data flow, one module each: chunks -> :mod:`ooc.writer` -> a chunked store
(:mod:`ooc.store`, format in :mod:`ooc.format`) -> :mod:`ooc.reader` and
:mod:`ooc.batching` -> :mod:`ooc.keras_dataset` / :mod:`ooc.tf_dataset`.
Raw text in: :func:`preprocess_text` (``ooc preprocess`` in Python) and
:func:`load_vectorizer` (a fitted vectorizer saved with ``vec.save``).
``import ooc`` does not import TensorFlow or Keras, nor the text pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

from .batching import BatchIterator, BatchOptions
from .errors import (
    ChecksumError,
    ChunkError,
    ClassSortedWarning,
    DamagedDatasetError,
    DatasetChangedError,
    DatasetExistsError,
    DatasetNotFoundError,
    FormatVersionError,
    IncompleteDatasetError,
    LabelFormWarning,
    NoSpaceError,
    NotADatasetError,
    OocError,
    OutputConflictError,
    SplitNotFoundError,
    StorageError,
    UnsupportedPlatformError,
    VectorizerFileError,
)
from .reader import Dataset, Split, open
from .sharded_writer import PartTarget, ShardedWriter, create_sharded
from .writer import DatasetWriter, create

__all__ = [
    "BackupAndRestore",
    "BatchIterator",
    "BatchOptions",
    "ChecksumError",
    "ChunkError",
    "ClassSortedWarning",
    "DamagedDatasetError",
    "Dataset",
    "DatasetChangedError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DatasetWriter",
    "FormatVersionError",
    "IncompleteDatasetError",
    "LabelFormWarning",
    "NoSpaceError",
    "NotADatasetError",
    "OocError",
    "OutputConflictError",
    "PartTarget",
    "ShardedWriter",
    "Split",
    "SplitNotFoundError",
    "StorageError",
    "UnsupportedPlatformError",
    "VectorizerFileError",
    "__version__",
    "create",
    "create_sharded",
    "load_vectorizer",
    "open",
    "preprocess_text",
]


def __getattr__(name: str) -> Any:
    # imported on first use: `import ooc` stays light.
    if name == "preprocess_text":
        from .preprocess import preprocess_text

        return preprocess_text
    if name == "BackupAndRestore":  # imports Keras
        from .keras_backup import BackupAndRestore

        return BackupAndRestore
    raise AttributeError(f"module 'ooc' has no attribute {name!r}")


def load_vectorizer(path: str | Path) -> Any:
    """Load a fitted vectorizer saved with ``vec.save(path)`` (checksum verified).

    ``ooc.load_vectorizer("vec.npz").transform(texts)`` vectorizes new texts
    as the dataset's rows were, without the dataset.
    """
    from .text.saved import load_vectorizer as load

    return load(path)
