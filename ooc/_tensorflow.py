"""The one place ooc imports TensorFlow and Keras, their C++ start-up log lines quieted first.

TensorFlow logs device probing at start-up (on a machine without a GPU an
``E0000 ... failed call to cuInit`` line that reads like a failure).  Level
3 keeps only fatal messages; real errors still arrive as Python exceptions.
A user who set ``TF_CPP_MIN_LOG_LEVEL`` keeps their value.
"""

from __future__ import annotations

import os
import re
from types import ModuleType

TF_LOG_LEVEL = "3"
KERAS_MIN = (3, 5)  # the first Keras that calls PyDataset.on_epoch_begin


def quiet_tensorflow_logs() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL`` unless the user did (read once, when TensorFlow loads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly."""
    quiet_tensorflow_logs()
    import tensorflow

    return tensorflow


def import_keras() -> ModuleType:
    """``import keras`` (whose TensorFlow backend loads TensorFlow), quietly.

    Raises MissingDependencyError for a Keras older than 3.5, whose ``fit``
    never calls ``on_epoch_begin``: the epoch shuffle would go wrong silently.
    """
    quiet_tensorflow_logs()
    import keras

    found = tuple(int(part) for part in re.findall(r"\d+", keras.__version__)[:2])
    if found < KERAS_MIN:
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            f"ooc's Keras adapter needs keras>=3.5; found keras {keras.__version__}. "
            "Upgrade it: pip install 'keras>=3.5'")
    return keras
