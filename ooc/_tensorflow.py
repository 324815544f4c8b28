"""The one place ooc imports TensorFlow and Keras, their C++ start-up log lines quieted first.

TensorFlow logs device probing at start-up (on a machine without a GPU an
``E0000 ... failed call to cuInit`` line that reads like a failure).  Level
3 keeps only fatal messages; real errors still arrive as Python exceptions.
A user who set ``TF_CPP_MIN_LOG_LEVEL`` keeps their value.

TensorFlow 2.21 logs its start-up lines through absl before absl is
initialised, which ignores that level (abseil/abseil-cpp#1957), so at level
3 the C++ side's stderr is also caught while TensorFlow loads and every line
but absl's log lines is written back.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

TF_LOG_LEVEL = "3"
KERAS_MIN = (3, 5)  # the first Keras that calls PyDataset.on_epoch_begin


def quiet_tensorflow_logs() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL`` unless the user did (read once, when TensorFlow loads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


# an absl log line ("I0000 00:00:1796333469.292887   25701 port.cc:153] ...") or absl's
# warning that it logs before being initialised
_ABSL_LINE = re.compile(rb"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
                        rb"|WARNING: All log messages before absl::InitializeLog\(\)")


@contextlib.contextmanager
def native_stderr_quieted() -> Iterator[None]:
    """Catch what is written to file descriptor 2 inside the block and write back every
    line that is not an absl log line; only at log level 3 and before TensorFlow loads."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != TF_LOG_LEVEL:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = b"".join(line for line in caught if not _ABSL_LINE.match(line))
            if kept:
                os.write(2, kept)


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly; a missing TensorFlow says what needs it."""
    quiet_tensorflow_logs()
    try:
        with native_stderr_quieted():
            import tensorflow
    except ImportError as exc:
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            f"TensorFlow is not installed here ({exc}): sparse='tensor' batches are "
            "tf.SparseTensor, and to_tf_dataset() makes a tf.data.Dataset. With Keras' JAX "
            "or torch backend pass sparse='dense' or 'csr'; or pip install 'ooc[keras]'."
        ) from None
    return tensorflow


def import_keras() -> ModuleType:
    """``import keras`` (whose TensorFlow backend loads TensorFlow), quietly.

    Raises MissingDependencyError for a Keras older than 3.5, whose ``fit``
    never calls ``on_epoch_begin``: the epoch shuffle would go wrong silently.
    """
    quiet_tensorflow_logs()
    with native_stderr_quieted():
        import keras

    found = tuple(int(part) for part in re.findall(r"\d+", keras.__version__)[:2])
    if found < KERAS_MIN:
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            f"ooc's Keras adapter needs keras>=3.5; found keras {keras.__version__}. "
            "Upgrade it: pip install 'keras>=3.5'")
    return keras
