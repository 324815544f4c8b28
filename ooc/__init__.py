"""ooc: out-of-core datasets for training on data that does not fit in memory.

Data flow, one module each: chunks -> :mod:`ooc.writer` -> a chunked store
(:mod:`ooc.store`, format in :mod:`ooc.format`) -> :mod:`ooc.reader` and
:mod:`ooc.batching` -> :mod:`ooc.keras_dataset` / :mod:`ooc.tf_dataset`.
``import ooc`` does not import TensorFlow or Keras.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
)
from .reader import Dataset, Split, open
from .writer import DatasetWriter, create

__all__ = [
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
    "Split",
    "SplitNotFoundError",
    "__version__",
    "create",
    "open",
]
