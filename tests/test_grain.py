"""ooc.grain: batches as a Grain random-access source, for Grain pipelines and Keras."""

from __future__ import annotations

import numpy as np
import pytest

import ooc

grain = pytest.importorskip("grain")
import ooc.grain  # noqa: E402

N = 1000


def make(path):
    x = np.arange(N, dtype=np.float32).reshape(-1, 1) * np.ones((1, 4), np.float32)
    with ooc.create(path, "npy") as w:
        w.append("train", x, (np.arange(N) % 2))
    return ooc.open(path).train


def test_records_are_batches_and_shards_cover_each_once(tmp_path):
    source = ooc.grain.BatchSource(make(tmp_path / "ds"), 64)
    assert len(source) == 16 and "batches of 64" in repr(source)
    x, y = source[15]
    assert y.tolist() == [v % 2 for v in range(960, 1000)]
    assert x.shape == (40, 4) and x.flags.writeable
    seen = []
    for index in range(2):
        sampler = grain.samplers.IndexSampler(
            len(source), shard_options=grain.sharding.ShardOptions(index, 2),
            shuffle=True, seed=4, num_epochs=1)
        loader = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0)
        seen += [int(v) for x, _ in loader for v in x[:, 0]]
    assert sorted(seen) == list(range(N))  # every row once across the two shards
    with pytest.raises(ValueError, match="Grain shuffles"):
        ooc.grain.BatchSource(make(tmp_path / "ds2"), 64, shuffle=True)


def test_keras_fits_a_grain_dataset_of_batches(tmp_path):
    keras = pytest.importorskip("keras")
    source = ooc.grain.BatchSource(make(tmp_path / "ds"), 100)
    dataset = grain.MapDataset.source(source).shuffle(seed=1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    steps: list[int] = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

    model.fit(dataset, epochs=2, verbose=0, shuffle=False, callbacks=[Count()])
    assert steps == [10, 10]  # every batch once an epoch
