"""Training Keras from ooc datasets: the batches Keras sees, and the weights it learns.

The main oracle is training itself: a small MLP fitted from disk must end with
the same weights as the same MLP fitted from the in-memory arrays, batch for
batch.  Any wrong, missing, duplicated or reordered row changes the weights.
Data is tiny (a few hundred rows) so the whole file runs in well under a
minute on two CPU cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import ooc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

N_ROWS = 200
N_COLS = 12
N_CLASSES = 3
BATCH = 32  # 200 = 6 * 32 + 8: a short last batch
CHUNKS = (37, 0, 101, 62)  # no chunk size divides (or is a multiple of) the batch size
FORMATS = ("hdf5", "npy")
EMPTY_ROWS = (0, 36, 37, 38, 137, 199)  # all-zero sparse rows, some at chunk edges


def dataset_path(tmp_path: Path, fmt: str, name: str = "d") -> Path:
    return tmp_path / (f"{name}.h5" if fmt == "hdf5" else name)


def make_arrays(sparse: bool, seed: int = 0) -> tuple[object, np.ndarray]:
    """x (dense float32 array or CSR float32 with empty rows) and int labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, N_ROWS)
    if not sparse:
        x = rng.normal(size=(N_ROWS, N_COLS)).astype(np.float32)
        x[:, 0] += y  # learnable signal, so training moves the weights far from init
        return x, y
    x = scipy.sparse.random(N_ROWS, N_COLS, density=0.3, format="csr", dtype=np.float32,
                            random_state=seed)
    keep = np.ones(N_ROWS, dtype=np.float32)
    keep[list(EMPTY_ROWS)] = 0
    x = scipy.sparse.csr_matrix(scipy.sparse.diags(keep) @ x, dtype=np.float32)
    x.eliminate_zeros()
    assert x.dtype == np.float32
    assert (np.diff(x.indptr)[list(EMPTY_ROWS)] == 0).all()
    return x, y


def write(path: Path, fmt: str, x: object, y: np.ndarray,
          chunks: tuple[int, ...] = CHUNKS) -> ooc.Split:
    assert sum(chunks) == y.shape[0]
    with ooc.create(path, fmt) as w:
        start = 0
        for n in chunks:
            w.append("train", x[start:start + n], y[start:start + n])
            start += n
    return ooc.open(path).train


def dense(x: object) -> np.ndarray:
    return x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)


def build_model(sparse_input: bool = False) -> keras.Model:
    keras.utils.set_random_seed(1234)
    inputs = keras.Input(shape=(N_COLS,), sparse=sparse_input)
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def init_weights() -> list[np.ndarray]:
    """One set of initial weights that every model in this file starts from."""
    return build_model().get_weights()


def fit_weights(init: list[np.ndarray], data: object, y: np.ndarray | None = None, *,
                sparse_input: bool = False, epochs: int = 2) -> list[np.ndarray]:
    """Fit a fresh model from ``init`` and return its final weights."""
    model = build_model(sparse_input)
    model.set_weights(init)
    if y is None:  # a PyDataset or tf.data.Dataset
        model.fit(data, shuffle=False, epochs=epochs, verbose=0)
    else:
        model.fit(data, y, batch_size=BATCH, shuffle=False, epochs=epochs, verbose=0)
    return model.get_weights()


def assert_weights_close(got: list[np.ndarray], want: list[np.ndarray], *,
                         rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def assert_weights_differ(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert any(not np.allclose(x, z, rtol=1e-5, atol=1e-6) for x, z in zip(a, b, strict=True))


def epoch_batches(split: ooc.Split, epoch: int, **kwargs: object) -> list[tuple]:
    return list(split.iter_batches(BATCH, epoch=epoch, **kwargs))


def assert_same_batches(got: list[tuple], want: list[tuple]) -> None:
    assert len(got) == len(want)
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        np.testing.assert_array_equal(dense(gx), dense(wx))
        np.testing.assert_array_equal(np.asarray(gy), np.asarray(wy))


# --- model.fit from a PyDataset equals model.fit from memory ----------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_fit_from_disk_matches_fit_from_memory(tmp_path, init_weights, fmt, sparse):
    x, y = make_arrays(sparse)
    split = write(dataset_path(tmp_path, fmt), fmt, x, y)
    assert split.is_sparse == sparse and len(split) == N_ROWS

    from_disk = fit_weights(init_weights, split.batches(BATCH, shuffle=False))
    from_memory = fit_weights(init_weights, dense(x), y)

    assert_weights_differ(from_memory, init_weights)  # training really moved the weights
    assert_weights_close(from_disk, from_memory)


def test_weight_comparison_detects_a_wrong_row_order(init_weights):
    """Control: the tolerance above is tight enough to see two rows swapped."""
    x, y = make_arrays(sparse=False)
    j = 100 + int(np.flatnonzero(y[100:] != y[3])[0])
    order = np.arange(N_ROWS)
    order[[3, j]] = order[[j, 3]]  # swap two rows (different labels) of different batches
    reference = fit_weights(init_weights, x, y)
    swapped = fit_weights(init_weights, x[order], y[order])
    assert_weights_differ(swapped, reference)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_tensor_batches_train_like_dense_batches(tmp_path, init_weights, fmt):
    x, y = make_arrays(sparse=True)
    split = write(dataset_path(tmp_path, fmt), fmt, x, y)

    batches = split.batches(BATCH, sparse="tensor")
    first_x, _ = batches[0]
    assert isinstance(first_x, tf.SparseTensor)
    np.testing.assert_array_equal(tf.sparse.to_dense(first_x).numpy(), dense(x[:BATCH]))
    last_x, _ = batches[len(batches) - 1]
    assert tuple(last_x.dense_shape.numpy()) == (N_ROWS % BATCH, N_COLS)

    from_sparse = fit_weights(init_weights, batches, sparse_input=True)
    from_dense = fit_weights(init_weights, split.batches(BATCH, sparse="dense"))

    assert_weights_differ(from_dense, init_weights)
    # The sparse model multiplies with tf.sparse.sparse_dense_matmul, which adds each
    # row's products in another order than the dense matmul, so the two agree only up
    # to float32 rounding (3e-8 measured here; it can grow over the 14 SGD steps and
    # differ between CPUs' kernels).  1e-4 / 1e-5 leaves room for that and still is
    # far below the ~1.5e-3 that swapping two rows makes (see
    # test_weight_comparison_detects_a_wrong_row_order).
    assert_weights_close(from_sparse, from_dense, rtol=1e-4, atol=1e-5)


# --- worker processes ------------------------------------------------------------------

def adapter_epochs(pyds: object, n_epochs: int = 2) -> list[list[tuple]]:
    """The batches Keras' own PyDataset adapter delivers, epoch by epoch."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(pyds, shuffle=False)
    epochs = []
    for _ in range(n_epochs):
        adapter.on_epoch_begin()
        epochs.append([(np.array(bx), np.array(by)) for bx, by in adapter.get_numpy_iterator()])
        adapter.on_epoch_end()
    return epochs


@pytest.mark.parametrize("shuffle_window", [1, 2])
def test_multiprocessing_workers_deliver_the_same_batches(tmp_path, shuffle_window):
    x, y = make_arrays(sparse=False)
    split = write(tmp_path / "d.h5", "hdf5", x, y)
    kwargs = {"shuffle": True, "seed": 7, "shuffle_window": shuffle_window}

    in_process = adapter_epochs(split.batches(BATCH, **kwargs))
    in_workers = adapter_epochs(split.batches(BATCH, workers=2, use_multiprocessing=True,
                                              **kwargs))

    for epoch in range(2):
        want = epoch_batches(split, epoch, **kwargs)
        assert_same_batches(in_process[epoch], want)
        assert_same_batches(in_workers[epoch], want)
    first_rows = [bx[0, 0] for bx, _ in in_workers[0]]
    assert first_rows != [bx[0, 0] for bx, _ in in_workers[1]]  # each epoch its own shuffle
    seen = np.concatenate([bx[:, 0] for bx, _ in in_workers[1]])
    np.testing.assert_array_equal(np.sort(seen), np.sort(x[:, 0]))


_MP_FIT_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    import keras
    import ooc
    from test_keras import BATCH, build_model

    init = np.load(sys.argv[1])
    model = build_model()
    model.set_weights([init[f"w{i}"] for i in range(len(init.files))])
    batches = ooc.open(sys.argv[2]).train.batches(
        BATCH, shuffle=True, seed=7, workers=2, use_multiprocessing=True)
    model.fit(batches, shuffle=False, epochs=2, verbose=0)
    np.savez(sys.argv[1] + ".out.npz", *model.get_weights())
""")


def test_fit_with_worker_processes_finishes_and_matches(tmp_path, init_weights):
    """A real ``fit`` with 2 worker processes must end, with the in-process weights.

    It runs in a subprocess so that a hang fails the test (timeout) instead of
    stalling the test run; pytest-timeout is not a dependency.
    """
    x, y = make_arrays(sparse=False)
    path = tmp_path / "d.h5"
    split = write(path, "hdf5", x, y)
    init_file = tmp_path / "init.npz"
    np.savez(init_file, **{f"w{i}": w for i, w in enumerate(init_weights)})

    proc = subprocess.run(
        [sys.executable, "-c", _MP_FIT_SCRIPT, str(init_file), str(path),
         str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(str(init_file) + ".out.npz") as out:
        in_workers = [out[f"arr_{i}"] for i in range(len(out.files))]

    in_process = fit_weights(init_weights, split.batches(BATCH, shuffle=True, seed=7))
    assert_weights_differ(in_process, init_weights)
    assert_weights_close(in_workers, in_process)



_SPAWN_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    sys.path.insert(0, sys.argv[3])

    if __name__ == "__main__":
        multiprocessing.set_start_method("spawn", force=True)
        import ooc
        from test_keras import BATCH, adapter_epochs

        batches = ooc.open(sys.argv[1]).train.batches(
            BATCH, shuffle=True, seed=7, shuffle_window=2, workers=2, use_multiprocessing=True)
        epochs = adapter_epochs(batches)
        np.savez(sys.argv[2], *[b for epoch in epochs for batch in epoch for b in batch])
""")


def test_spawned_worker_processes_deliver_the_same_batches(tmp_path):
    """Worker processes started with "spawn" (the default on macOS and Windows).

    A spawned worker gets the dataset by pickle, not by fork: it must reopen
    the HDF5 file itself and read the epoch the parent is in.
    """
    x, y = make_arrays(sparse=False)
    path = tmp_path / "d.h5"
    split = write(path, "hdf5", x, y)
    out = tmp_path / "spawned.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _SPAWN_SCRIPT, str(path), str(out), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as got:
        flat = [got[f"arr_{i}"] for i in range(len(got.files))]
    kwargs = {"shuffle": True, "seed": 7, "shuffle_window": 2}
    want = [batch for epoch in range(2) for batch in epoch_batches(split, epoch, **kwargs)]
    assert_same_batches(list(zip(flat[::2], flat[1::2], strict=True)), want)


# --- tf.data ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_tf_dataset_epochs_match_iter_batches(tmp_path, fmt, sparse):
    x, y = make_arrays(sparse)
    split = write(dataset_path(tmp_path, fmt), fmt, x, y)
    kwargs = {"shuffle": True, "seed": 3, "shuffle_window": 2}
    want = [epoch_batches(split, epoch, **kwargs) for epoch in range(2)]
    assert [b[1].tolist() for b in want[0]] != [b[1].tolist() for b in want[1]]

    ds = split.to_tf_dataset(BATCH, **kwargs)
    for epoch in range(2):  # each pass over the dataset is the next epoch
        got = [(bx.numpy(), by.numpy()) for bx, by in ds]
        assert_same_batches(got, want[epoch])
        assert all(bx.dtype == np.float32 for bx, _ in got)

    if sparse:
        ds = split.to_tf_dataset(BATCH, sparse="tensor", **kwargs)
        for epoch in range(2):
            got = list(ds)
            assert all(isinstance(bx, tf.SparseTensor) for bx, _ in got)
            assert_same_batches([(tf.sparse.to_dense(bx).numpy(), by.numpy())
                                 for bx, by in got], want[epoch])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_batches_tensorflow_still_holds_are_never_overwritten(tmp_path, fmt, sparse):
    # Batches this large come from ooc's recycled buffers, and TensorFlow
    # wraps them without a copy: every tensor of an epoch, kept to the end,
    # must still hold its own rows.
    rng = np.random.default_rng(5)
    n_rows, n_cols, batch = 1000, 200, 64  # 51 KB per batch
    y = rng.integers(0, N_CLASSES, n_rows)
    x = rng.normal(size=(n_rows, n_cols)).astype(np.float32)
    if sparse:
        x = scipy.sparse.csr_matrix(np.where(x > 1.0, x, 0).astype(np.float32))
    split = write(dataset_path(tmp_path, fmt), fmt, x, y, chunks=(300, 700))
    want = dense(x)
    spec = (tf.TensorSpec((None, n_cols), tf.float32), tf.TensorSpec((None,), tf.int64))
    # the second is how Keras feeds a PyDataset to fit
    feeds = [split.to_tf_dataset(batch),
             tf.data.Dataset.from_generator(lambda: iter(split.batches(batch)),
                                            output_signature=spec).prefetch(4)]
    if sparse:  # its (row, column) indices, 32 KB a batch, are recycled buffers too
        feeds.append(split.to_tf_dataset(batch, sparse="tensor"))
    for ds in feeds:
        held = list(ds)
        got = np.concatenate([(tf.sparse.to_dense(bx) if isinstance(bx, tf.SparseTensor)
                               else bx).numpy() for bx, _ in held])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.concatenate([by.numpy() for _, by in held]), y)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_tensors_from_batches_keep_their_values(tmp_path, fmt):
    # batches(sparse="tensor") hands TensorFlow the recycled buffers of its
    # values and indices without a copy (DLPack): every tensor of an epoch,
    # kept to the end, directly or through from_generator as Keras feeds it,
    # must still hold its own rows.
    rng = np.random.default_rng(6)
    n_rows, n_cols, batch = 1000, 400, 64  # ~12,800 values a batch: 51 KB, pooled
    x = rng.normal(size=(n_rows, n_cols)).astype(np.float32)
    x = scipy.sparse.csr_matrix(np.where(x > 0, x, 0).astype(np.float32))
    y = rng.integers(0, N_CLASSES, n_rows)
    split = write(dataset_path(tmp_path, fmt), fmt, x, y, chunks=(300, 700))
    ds = split.batches(batch, sparse="tensor")
    spec = (tf.SparseTensorSpec((None, n_cols), tf.float32), tf.TensorSpec((None,), tf.int64))
    fed = tf.data.Dataset.from_generator(lambda: (ds[i] for i in range(len(ds))),
                                         output_signature=spec).prefetch(4)
    for held in ([ds[i] for i in range(len(ds))], list(fed)):
        assert all(isinstance(bx, tf.SparseTensor) for bx, _ in held)
        got = np.concatenate([tf.sparse.to_dense(bx).numpy() for bx, _ in held])
        np.testing.assert_array_equal(got, x.toarray())
        np.testing.assert_array_equal(np.concatenate([np.asarray(by) for _, by in held]), y)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fit_from_tf_dataset_matches_fit_from_memory(tmp_path, init_weights, fmt):
    x, y = make_arrays(sparse=True)
    split = write(dataset_path(tmp_path, fmt), fmt, x, y)
    from_disk = fit_weights(init_weights, split.to_tf_dataset(BATCH), epochs=1)
    from_memory = fit_weights(init_weights, dense(x), y, epochs=1)
    assert_weights_differ(from_memory, init_weights)
    assert_weights_close(from_disk, from_memory)

    # Two shuffled epochs: fit must train on epoch 0, then epoch 1 of the plan.
    kwargs = {"shuffle": True, "seed": 5, "shuffle_window": 2}
    from_tf_data = fit_weights(init_weights, split.to_tf_dataset(BATCH, **kwargs))
    want = train_on_plan_epochs(init_weights, split, (0, 1), **kwargs)
    assert_weights_differ(want, train_on_plan_epochs(init_weights, split, (1, 0), **kwargs))
    assert_weights_close(from_tf_data, want)


def train_on_plan_epochs(init: list[np.ndarray], split: ooc.Split, epochs: tuple[int, ...],
                         **kwargs: object) -> list[np.ndarray]:
    """Oracle: ``train_on_batch`` over ``iter_batches`` of the given plan epochs."""
    model = build_model()
    model.set_weights(init)
    for epoch in epochs:
        for bx, by in split.iter_batches(BATCH, epoch=epoch, **kwargs):
            model.train_on_batch(bx, by)
    return model.get_weights()


def test_fit_from_shuffled_pydataset_trains_on_plan_epochs_0_and_1(tmp_path, init_weights):
    # Keras' fit() calls on_epoch_end() once before its first epoch; ooc must ignore it.
    x, y = make_arrays(sparse=False)
    split = write(tmp_path / "d.h5", "hdf5", x, y)
    kwargs = {"shuffle": True, "seed": 5, "shuffle_window": 2}
    from_pydataset = fit_weights(init_weights, split.batches(BATCH, **kwargs))
    assert_weights_close(from_pydataset, train_on_plan_epochs(init_weights, split, (0, 1),
                                                              **kwargs))


def test_a_resumed_fit_trains_on_the_epochs_after_its_initial_epoch(tmp_path, init_weights):
    # batches(epoch=initial_epoch): a run resumed at epoch 3 sees the orders of epochs 3
    # and 4, as the uninterrupted run did
    x, y = make_arrays(sparse=False)
    split = write(tmp_path / "d.h5", "hdf5", x, y)
    kwargs = {"shuffle": True, "seed": 5, "shuffle_window": 2}
    resumed = fit_weights(init_weights, split.batches(BATCH, epoch=3, **kwargs))
    assert_weights_close(resumed, train_on_plan_epochs(init_weights, split, (3, 4), **kwargs))


def test_tf_dataset_knows_its_number_of_batches(tmp_path):
    # Without a known cardinality Keras warns "Your input ran out of data" every epoch.
    x, y = make_arrays(sparse=False)
    split = write(tmp_path / "d.h5", "hdf5", x, y)
    ds = split.to_tf_dataset(BATCH)
    assert int(ds.cardinality()) == split.steps_per_epoch(BATCH) == len(list(ds))


# --- shuffle windows on class-sorted data ------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_shuffle_window_mixes_class_sorted_rows(tmp_path, fmt):
    per_class, batch, window = 100, 32, 4
    n = per_class * N_CLASSES
    y = np.repeat(np.arange(N_CLASSES), per_class)  # sorted: all 0s, then 1s, then 2s
    x = np.zeros((n, 4), dtype=np.float32)
    x[:, 0] = np.arange(n)  # column 0 is the row id
    x[:, 1] = y
    split = write(dataset_path(tmp_path, fmt), fmt, x, y, chunks=(45, 101, 99, 55))

    def mixed_fraction(shuffle_window: int) -> list[float]:
        fractions = []
        for epoch in range(3):
            batches = list(split.iter_batches(batch, shuffle=True, seed=11, epoch=epoch,
                                              shuffle_window=shuffle_window))
            rows = np.concatenate([bx[:, 0] for bx, _ in batches]).astype(np.int64)
            assert len(rows) == n and (np.sort(rows) == np.arange(n)).all()
            for bx, by in batches:  # labels travel with their rows
                np.testing.assert_array_equal(bx[:, 1], by)
                np.testing.assert_array_equal(by, y[bx[:, 0].astype(np.int64)])
            fractions.append(np.mean([len(np.unique(by)) > 1 for _, by in batches]))
        return fractions

    # A window of 4 batches is 128 rows, more than one class's 100 rows, so every full
    # window spans two classes and nearly all of its batches mix them.
    assert all(f >= 0.6 for f in mixed_fraction(window))
    # Control: whole-batch shuffling alone leaves all but the 2 boundary batches pure.
    assert all(f < 0.6 for f in mixed_fraction(1))


# ---------------------------------------------------------------- batch options
def _as_dense_batch(x: object) -> np.ndarray:
    if isinstance(x, tf.SparseTensor):
        return tf.sparse.to_dense(x).numpy()
    return dense(x.numpy() if isinstance(x, tf.Tensor) else x)


@pytest.mark.parametrize("sparse", ["dense", "csr", "tensor"])
def test_every_batch_reader_takes_the_same_sparse_values(tmp_path, sparse):
    x, y = make_arrays(sparse=True)
    split = write(dataset_path(tmp_path, "npy"), "npy", x, y)
    readers = {"iter_batches": list(split.iter_batches(BATCH, sparse=sparse)),
               "batches": [split.batches(BATCH, sparse=sparse)[i]
                           for i in range(split.steps_per_epoch(BATCH))],
               "to_tf_dataset": list(split.to_tf_dataset(BATCH, sparse=sparse))}
    for name, got in readers.items():
        rows = np.concatenate([_as_dense_batch(bx) for bx, _ in got])
        np.testing.assert_array_equal(rows, dense(x), err_msg=name)
    first = readers["iter_batches"][0][0]
    expected = {"dense": np.ndarray, "csr": scipy.sparse.csr_matrix, "tensor": tf.SparseTensor}
    assert isinstance(first, expected[sparse])


def test_fit_takes_csr_batches(tmp_path, init_weights):
    x, y = make_arrays(sparse=True)
    split = write(dataset_path(tmp_path, "hdf5"), "hdf5", x, y)
    from_csr = fit_weights(init_weights, split.batches(BATCH, sparse="csr"), sparse_input=True)
    from_tensor = fit_weights(init_weights, split.batches(BATCH, sparse="tensor"),
                              sparse_input=True)
    assert_weights_differ(from_csr, init_weights)
    assert_weights_close(from_csr, from_tensor, rtol=0, atol=0)


def test_batch_options_are_one_object_with_one_check(tmp_path):
    x, y = make_arrays(sparse=False)
    split = write(dataset_path(tmp_path, "npy"), "npy", x, y)
    options = ooc.BatchOptions(BATCH, shuffle=True, seed=7, shuffle_window=2)
    by_object = [b for _, b in split.iter_batches(options)]
    by_keywords = [b for _, b in split.iter_batches(BATCH, shuffle=True, seed=7,
                                                    shuffle_window=2)]
    assert [b.tolist() for b in by_object] == [b.tolist() for b in by_keywords]
    overridden = next(split.iter_batches(options, shuffle_window=1))[1]
    assert overridden.tolist() != by_object[0].tolist()
    for method in (split.iter_batches, split.batches, split.to_tf_dataset):
        with pytest.raises(TypeError, match=r"shufle.*batch options are shuffle, seed"):
            next(iter(method(BATCH, shufle=True)))
        with pytest.raises(ValueError, match=r"'dense', 'csr', 'tensor'.*'coo'"):
            next(iter(method(BATCH, sparse="coo")))
