"""The guide's text classifiers, and its training loop fed from disk.

``mlp_model`` (for n-gram TF-IDF vectors) and ``sepcnn_model`` (for token
sequences) are the models of Google's text-classification guide, with its
defaults; both come back compiled with the guide's loss, ``Adam`` and the
``acc`` metric.  :func:`train_from_disk` is the guide's ``train_*_model``
loop with the in-memory arrays replaced by ``ds.train.batches(...)``.

Imports Keras; ``import ooc`` and ``ooc preprocess`` never import this module.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tensorflow import import_keras
from .errors import OocError
from .reader import Dataset

keras = import_keras()


def output_units_and_activation(num_classes: int) -> tuple[int, str]:
    """One sigmoid unit for 2 classes, else ``num_classes`` softmax units."""
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Got {num_classes} instead.")
    return (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")


def loss_for(num_classes: int) -> str:
    """``binary_crossentropy`` for 2 classes, else ``sparse_categorical_crossentropy``."""
    output_units_and_activation(num_classes)
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"


def compile_model(model: keras.Model, num_classes: int, learning_rate: float = 1e-3) -> None:
    """Compile ``model`` as the guide does: its loss, ``Adam(learning_rate)``, ``acc``."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss=loss_for(num_classes), metrics=["acc"])


def _shape(input_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)


def mlp_model(layers: int = 2, units: int = 64, dropout_rate: float = 0.2, *,
              input_shape: int | tuple[int, ...], num_classes: int,
              learning_rate: float = 1e-3) -> keras.Sequential:
    """The guide's multi-layer perceptron over n-gram vectors, compiled.

    Dropout on the input, then ``layers - 1`` times ``Dense(units, relu)`` +
    ``Dropout``, then the output layer (see :func:`output_units_and_activation`).
    """
    if layers < 1:
        raise ValueError(f"Expected layers >= 1. Got {layers} instead.")
    op_units, op_activation = output_units_and_activation(num_classes)
    model = keras.Sequential([keras.Input(_shape(input_shape)),
                              keras.layers.Dropout(dropout_rate)], name="mlp")
    for _ in range(layers - 1):
        model.add(keras.layers.Dense(units, activation="relu"))
        model.add(keras.layers.Dropout(dropout_rate))
    model.add(keras.layers.Dense(op_units, activation=op_activation))
    compile_model(model, num_classes, learning_rate)
    return model


def _separable_conv(filters: int, kernel_size: int) -> keras.layers.SeparableConv1D:
    """``SeparableConv1D`` + ReLU whose initial weights keep the activations' scale.

    Keras sizes a depthwise kernel as if each output saw ``kernel_size *
    channels`` inputs, but it sees ``kernel_size``; with that (or the guide's
    ``random_uniform``) the input's share of the activations shrinks about
    30x per layer, and four layers leave the sepCNN stuck at chance (see
    docs/BENCHMARKS.md).  He-uniform for the true fan-in, and zero biases.
    """
    limit = (6.0 / kernel_size) ** 0.5
    return keras.layers.SeparableConv1D(
        filters, kernel_size, activation="relu", padding="same",
        depthwise_initializer=keras.initializers.RandomUniform(-limit, limit),
        pointwise_initializer="he_uniform")


def sepcnn_model(blocks: int = 2, filters: int = 64, kernel_size: int = 3,
                 embedding_dim: int = 200, dropout_rate: float = 0.2, pool_size: int = 3, *,
                 input_shape: int | tuple[int, ...], num_classes: int, num_features: int,
                 learning_rate: float = 1e-3) -> keras.Sequential:
    """The guide's separable-convolution network over token sequences, compiled.

    ``Embedding(num_features, embedding_dim)``, then ``blocks - 1`` blocks of
    ``Dropout`` + 2 ``SeparableConv1D(filters)`` + ``MaxPooling1D(pool_size)``,
    then 2 ``SeparableConv1D(2 * filters)``, ``GlobalAveragePooling1D``,
    ``Dropout`` and the output layer.  ``num_features`` is the vocabulary
    size + 1 (id 0 is padding); ``input_shape`` is ``(sequence length,)``.
    The convolutions' initializers differ from the guide's: see ``_separable_conv``.
    """
    shape = _shape(input_shape)
    if blocks < 1:
        raise ValueError(f"Expected blocks >= 1. Got {blocks} instead.")
    if shape[0] < pool_size ** (blocks - 1):
        raise ValueError(
            f"Expected sequences of at least pool_size ** (blocks - 1) = "
            f"{pool_size ** (blocks - 1)} tokens for {blocks - 1} pooling layers. Got "
            f"length {shape[0]} instead; lower --blocks or --pool-size.")
    op_units, op_activation = output_units_and_activation(num_classes)
    model = keras.Sequential([keras.Input(shape, dtype="int32"),
                              keras.layers.Embedding(num_features, embedding_dim)],
                             name="sepcnn")
    for _ in range(blocks - 1):
        model.add(keras.layers.Dropout(dropout_rate))
        model.add(_separable_conv(filters, kernel_size))
        model.add(_separable_conv(filters, kernel_size))
        model.add(keras.layers.MaxPooling1D(pool_size))
    model.add(_separable_conv(filters * 2, kernel_size))
    model.add(_separable_conv(filters * 2, kernel_size))
    model.add(keras.layers.GlobalAveragePooling1D())
    model.add(keras.layers.Dropout(dropout_rate))
    model.add(keras.layers.Dense(op_units, activation=op_activation))
    compile_model(model, num_classes, learning_rate)
    return model


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every training epoch (validation included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Stop the clock."""
        self.seconds.append(time.perf_counter() - self._start)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_from_disk` reports: the scores of the best epoch, whose weights
    the model holds when training ends."""

    val_acc: float
    val_loss: float
    epochs: int
    best_epoch: int  # 1-based, the epoch of the lowest val_loss
    epoch_seconds: list[float]
    history: dict[str, list[float]]

    def format(self) -> str:
        """The guide's closing line (best epoch), plus epochs and time per epoch."""
        per_epoch = sum(self.epoch_seconds) / max(len(self.epoch_seconds), 1)
        return (f"Validation accuracy: {self.val_acc:.4f}, loss: {self.val_loss:.4f} "
                f"(best epoch {self.best_epoch} of {self.epochs}, weights restored)\n"
                f"Epochs: {self.epochs}, {per_epoch:.1f} s per epoch "
                f"({sum(self.epoch_seconds):.1f} s in all)")


def train_from_disk(model: keras.Model, ds: Dataset, *, batch_size: int = 128,
                    epochs: int = 1000, seed: int | None = 123, patience: int = 2,
                    workers: int = 1, verbose: int | str = 2) -> TrainResult:
    """Fit ``model`` on ``ds.train`` read from disk, validating on ``ds.val``.

    The guide's loop: early stopping on ``val_loss`` with ``patience``; batch
    order shuffled each epoch as a pure function of ``(seed, epoch)``.
    ``workers > 1`` reads batches in that many threads.  When training ends,
    by early stopping or after ``epochs``, the model holds the weights of the
    epoch with the lowest ``val_loss`` and the result reports that epoch.
    """
    if batch_size < 1 or epochs < 1:
        raise ValueError(f"Expected batch_size >= 1 and epochs >= 1. Got {batch_size} and "
                         f"{epochs} instead.")
    timer = EpochTimer()
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=True)
    history = model.fit(
        ds.train.batches(batch_size, shuffle=True, seed=seed, workers=workers),
        validation_data=ds.val.batches(batch_size, workers=workers),
        epochs=epochs, shuffle=False, verbose=verbose, callbacks=[stopper, timer])
    # Some Keras 3 releases restore only when patience runs out, not after the last epoch.
    if stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)
    logs = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    best = int(np.argmin(logs["val_loss"]))  # first of equal losses, as EarlyStopping keeps
    return TrainResult(logs["val_acc"][best], logs["val_loss"][best], len(logs["val_loss"]),
                       best + 1, timer.seconds, logs)


def training_parser(description: str) -> argparse.ArgumentParser:
    """Arguments shared by ``tools/train_*_model.py`` (defaults: the guide's)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("dataset", help="an ooc dataset (HDF5 file or .npy directory)")
    p.add_argument("--epochs", type=int, default=1000, help="at most (early stopping)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=0.2, help="dropout rate")
    p.add_argument("--patience", type=int, default=2, help="early-stopping patience")
    p.add_argument("--workers", type=int, default=1, help="threads reading batches")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--save", metavar="PATH", help="save the trained model (e.g. model.keras)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def num_classes_of(ds: Dataset) -> int:
    """Number of classes of a dataset: its class names, else the largest label + 1."""
    if ds.classes:
        return len(ds.classes)
    return max(len(ds.train.label_counts), len(ds.val.label_counts))


def run_training(args: argparse.Namespace, build: Any, name: str) -> int:
    """Open ``args.dataset``, ``build(ds)`` a model, train it, print the scores.

    The body of ``tools/train_*_model.py`` (``name``); returns the exit
    status, 1 with one line on stderr for bad input.  Saves the model to
    ``args.save`` when given.
    """
    try:
        return _run_training(args, build)
    except (OocError, OSError, ValueError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1


def _run_training(args: argparse.Namespace, build: Any) -> int:
    from .reader import open as open_dataset

    keras.utils.set_random_seed(args.seed)
    with open_dataset(args.dataset) as ds:
        model = build(ds)
        print(f"{model.name}: {model.count_params():,} parameters; train "
              f"{ds.train.shape}, val {ds.val.shape}, {num_classes_of(ds)} classes")
        result = train_from_disk(model, ds, batch_size=args.batch_size, epochs=args.epochs,
                                 seed=args.seed, patience=args.patience,
                                 workers=args.workers, verbose=0 if args.quiet else 2)
        print(result.format())
        if "test" in ds:  # held out from training and from early stopping alike
            loss, acc = model.evaluate(ds.test.batches(args.batch_size, workers=args.workers),
                                       verbose=0)
            print(f"Test accuracy: {acc:.4f}, loss: {loss:.4f} ({len(ds.test):,} rows, "
                  f"the best epoch's weights)")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    return 0
