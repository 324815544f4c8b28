"""tf.data adapter: a prefetched ``tf.data.Dataset`` over a split's batches.

Imports TensorFlow; nothing else in ooc's read path does.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ._tensorflow import import_tensorflow
from .batching import BatchReader, coo_indices

tf = import_tensorflow()


def make_tf_dataset(reader: BatchReader, *, num_parallel_reads: int | None = None,
                    prefetch: int | None = None) -> tf.data.Dataset:
    """Build the dataset: batch positions -> parallel reads -> prefetch.

    Each iteration over the returned dataset is a new epoch (its own
    shuffle); reads run in parallel but batches come out in order.
    """
    auto = tf.data.AUTOTUNE
    epochs = itertools.count()
    n_batches = len(reader)

    def positions() -> Any:
        epoch = next(epochs)
        for i in range(n_batches):
            yield epoch, i

    spec = tf.TensorSpec((), tf.int64)
    index = tf.data.Dataset.from_generator(positions, output_signature=(spec, spec))
    split = reader.split
    n_cols = split.shape[1]
    parallel = auto if num_parallel_reads is None else num_parallel_reads
    if split.is_sparse and reader.options.sparse != "dense":  # tensors: "csr" is "tensor" here
        ds = index.map(lambda e, i: _read_sparse(reader, e, i, n_cols), num_parallel_calls=parallel)
    else:
        ds = index.map(lambda e, i: _read_dense(reader, e, i, n_cols), num_parallel_calls=parallel)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.prefetch(auto if prefetch is None else prefetch)


def _read_dense(reader: BatchReader, epoch: Any, i: Any, n_cols: int) -> tuple[Any, Any]:
    def read(e: np.int64, k: np.int64) -> tuple[np.ndarray, np.ndarray]:
        return reader.read(int(k), int(e))

    x_dtype = tf.as_dtype(reader.split.x.dtype)
    x, y = tf.numpy_function(read, [epoch, i], [x_dtype, tf.int64], stateful=False)
    x.set_shape((None, n_cols))
    y.set_shape((None,))
    return x, y


def _read_sparse(reader: BatchReader, epoch: Any, i: Any, n_cols: int) -> tuple[Any, Any]:
    def read(e: np.int64, k: np.int64) -> tuple[np.ndarray, ...]:
        x, y = reader.read(int(k), int(e))
        return coo_indices(x), x.data, y

    x_dtype = tf.as_dtype(reader.split.x.dtype)
    indices, values, y = tf.numpy_function(read, [epoch, i], [tf.int64, x_dtype, tf.int64],
                                           stateful=False)
    indices.set_shape((None, 2))
    values.set_shape((None,))
    y.set_shape((None,))
    dense_shape = tf.stack([tf.shape(y, out_type=tf.int64)[0], tf.constant(n_cols, tf.int64)])
    return tf.SparseTensor(indices, values, dense_shape), y
