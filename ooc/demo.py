"""``ooc demo``: write a synthetic TF-IDF-like dataset, train the guide's MLP from disk.

Until the text pipeline lands, the data are synthetic sparse rows: each
class favours its own block of features, every row has Zipf-distributed
background features, and rows are l2-normalised like TF-IDF vectors.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np
import scipy.sparse
from tqdm import tqdm

from ._report import bytes_on_disk, human_bytes, peak_rss_bytes
from .writer import create

CHUNK_ROWS = 5_000


def synthetic_chunks(rows: int, features: int, classes: int, seed: int,
                     nnz_per_row: int = 60) -> Iterator[tuple[scipy.sparse.csr_matrix, np.ndarray]]:
    """Yield ``(x, y)`` chunks of a seeded, learnable sparse classification task."""
    rng = np.random.default_rng(seed)
    block = max(1, features // (4 * classes))
    ranks = np.arange(1, features + 1)
    zipf = (1.0 / ranks) / (1.0 / ranks).sum()
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        y = rng.integers(0, classes, size=n)
        background = rng.choice(features, size=(n, nnz_per_row), p=zipf)
        signal = y[:, None] * block + rng.integers(0, block, size=(n, nnz_per_row // 6))
        cols = np.concatenate([background, signal], axis=1)
        data = rng.random(cols.shape, dtype=np.float32) + 0.1
        x = scipy.sparse.csr_matrix((data.ravel(), cols.ravel(),
                                     np.arange(0, cols.size + 1, cols.shape[1])),
                                    shape=(n, features))
        x.sum_duplicates()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        yield scipy.sparse.diags(1.0 / norms).astype(np.float32) @ x, y


def mlp_model(n_features: int, n_classes: int, units: int = 64, dropout: float = 0.2) -> object:
    """The guide's MLP: dropout, two dense layers of ``units``, softmax output."""
    import keras

    model = keras.Sequential([
        keras.Input((n_features,)),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _write(args: argparse.Namespace) -> float:
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed + 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with create(args.out, args.format, overwrite=True) as w:
        w.set_metadata(classes=[f"class_{i}" for i in range(args.classes)],
                       feature_names=[f"f{i}" for i in range(args.features)],
                       config={"source": "ooc demo", "seed": args.seed})
        chunks = synthetic_chunks(args.rows, args.features, args.classes, args.seed)
        with tqdm(total=args.rows, unit="rows", desc="write") as bar:
            for x, y in chunks:
                is_val = rng.random(len(y)) < 0.2
                w.append("train", x[~is_val], y[~is_val])
                w.append("val", x[is_val], y[is_val])
                bar.update(len(y))
    return time.perf_counter() - t0


def run_demo(args: argparse.Namespace) -> int:
    """Write the demo dataset, train one model from disk, print a summary."""
    from .reader import open as open_dataset

    write_s = _write(args)
    import keras

    keras.utils.set_random_seed(args.seed)
    with open_dataset(args.out) as ds:
        model = mlp_model(ds.train.shape[1], len(ds.classes or ()))
        t0 = time.perf_counter()
        history = model.fit(ds.train.batches(args.batch_size, shuffle=True, seed=args.seed),
                            validation_data=ds.val.batches(args.batch_size),
                            epochs=args.epochs, verbose=2)
        train_s = time.perf_counter() - t0
        print("\nsummary")
        for name, split in ds.splits.items():
            print(f"  {name:<6} {len(split):>9} rows x {split.shape[1]} features, "
                  f"{split.nnz} non-zeros")
        print(f"  on disk   {human_bytes(bytes_on_disk(ds.path))} at {ds.path}")
        print(f"  write     {write_s:.1f} s   train {train_s:.1f} s ({args.epochs} epoch(s))")
        print(f"  val acc   {history.history['val_accuracy'][-1]:.3f}")
        print(f"  peak RSS  {human_bytes(peak_rss_bytes())}")
    return 0
