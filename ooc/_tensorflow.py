"""The one place ooc imports TensorFlow and Keras, their C++ start-up log lines quieted first.

TensorFlow logs device probing at start-up (on a machine without a GPU an
``E0000 ... failed call to cuInit`` line that reads like a failure).  Level
3 keeps only fatal messages; real errors still arrive as Python exceptions.
A user who set ``TF_CPP_MIN_LOG_LEVEL`` keeps their value.
"""

from __future__ import annotations

import os
from types import ModuleType

TF_LOG_LEVEL = "3"


def quiet_tensorflow_logs() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL`` unless the user did (read once, when TensorFlow loads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly."""
    quiet_tensorflow_logs()
    import tensorflow

    return tensorflow


def import_keras() -> ModuleType:
    """``import keras`` (whose TensorFlow backend loads TensorFlow), quietly."""
    quiet_tensorflow_logs()
    import keras

    return keras
