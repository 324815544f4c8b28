"""ooc.BackupAndRestore: a fit killed mid-epoch resumes, in a new process, with exactly the
batches that were to come (issue 18 item 5), on each Keras backend installed."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import ooc

REPO = Path(__file__).resolve().parents[1]
BACKENDS = [b for b in ("tensorflow", "torch", "jax") if importlib.util.find_spec(b)]

# One training run, in a process of its own: `mode` straight (no backup), backup (killed
# with os._exit after batch 37 of epoch 2), or resume.
SCRIPT = textwrap.dedent("""
    import os, sys
    backend, data, backup, out, mode = sys.argv[1:6]
    os.environ["KERAS_BACKEND"] = backend
    import keras, numpy as np, ooc
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    batches = ooc.open(data).train.batches(50, shuffle=True, seed=7, shuffle_window=3)

    class Kill(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if mode == "backup" and self.epoch == 2 and batch == 37:
                os._exit(3)
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            print("epoch", epoch, "of", len(batches), "batches", flush=True)

    callbacks = [Kill()]
    if mode != "straight":
        callbacks.insert(0, ooc.BackupAndRestore(batches, backup, save_freq=5))
    model.fit(batches, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    np.savez(out, *model.get_weights())
""")


def train(backend: str, data: Path, backup: Path, out: Path,
          mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, backend, str(data), str(backup),
                           str(out), mode], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backup") / "ds"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8)).astype(np.float32)
    with ooc.create(path, "npy") as w:
        w.append("train", x, np.argmax(x[:, :3], axis=1))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_after_batch_37_of_epoch_2_resumes_with_the_remaining_batches(
        tmp_path, data, backend):
    straight = train(backend, data, tmp_path / "none", tmp_path / "straight.npz", "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    backup = tmp_path / "backup"
    killed = train(backend, data, backup, tmp_path / "unused.npz", "backup")
    assert killed.returncode == 3, killed.stderr[-3000:]
    state = json.loads((backup / "ooc-backup.json").read_text())
    # backups every 5 batches: the last before the kill was after batch 35 (0-based 34)
    assert (state["keras_epoch"], state["batches"]["epoch"], state["batches"]["position"]) \
        == (2, 2, 35)
    resumed = train(backend, data, backup, tmp_path / "resumed.npz", "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "epoch 2 of 25 batches" in resumed.stdout and "epoch 3 of 60" in resumed.stdout
    assert "ran out of data" not in resumed.stderr
    got, want = weights(tmp_path / "resumed.npz"), weights(tmp_path / "straight.npz")
    assert len(got) == len(want) == 4
    for a, b in zip(got, want, strict=True):  # the optimizer's step count restored too
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not backup.exists()  # deleted when fit ended


def test_the_backups_pair_of_weights_and_state_is_checked(tmp_path, data):
    keras = pytest.importorskip("keras")
    split = ooc.open(data).train
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    batches = split.batches(100, shuffle=True, seed=1)
    cb = ooc.BackupAndRestore(batches, backup, save_freq=7, delete_checkpoint=False)
    model.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    state = json.loads((backup / "ooc-backup.json").read_text())
    assert state["keras_epoch"] == 1 and state["batches"]["position"] == 0
    # one weights file: each backup removes the one before; a killed save's are removed
    # by the next fit
    assert sorted(p.name for p in backup.iterdir()) == [
        "notes.txt", state["weights"], "ooc-backup.json"]
    assert re.fullmatch(r"ooc-backup-1-0-[0-9a-f]+\.weights\.h5", state["weights"])
    for leftover in ("ooc-backup-1-14-0123abcd.weights.h5", "ooc-backup.json.tmp-4567ef"):
        (backup / leftover).write_bytes(b"half")

    with pytest.raises(ValueError, match="needs batches made with a seed"):
        ooc.BackupAndRestore(split.batches(100, shuffle=True), backup)
    # a state of batches in another order is refused before the model is touched
    other = split.batches(100, shuffle=True, seed=2)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ooc.OocError, match="another order"):
        model.fit(other, epochs=2, shuffle=False, verbose=0,
                  callbacks=[ooc.BackupAndRestore(other, backup)])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    assert sorted(p.name for p in backup.iterdir()) == [
        "notes.txt", state["weights"], "ooc-backup.json"]
    # a flipped byte in the weights
    path = backup / state["weights"]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ooc.OocError, match="missing or damaged"):
        model.fit(batches, epochs=2, shuffle=False, verbose=0,
                  callbacks=[ooc.BackupAndRestore(batches, backup)])
    (backup / "ooc-backup.json").write_text("{")
    with pytest.raises(ooc.OocError, match="not a readable ooc backup"):
        model.fit(batches, epochs=2, shuffle=False, verbose=0,
                  callbacks=[ooc.BackupAndRestore(batches, backup)])
    # what ends a fit deletes the backup's own files only
    (backup / "ooc-backup.json").unlink()
    fresh = split.batches(100, shuffle=True, seed=1)
    model.fit(fresh, epochs=1, shuffle=False, verbose=0,
              callbacks=[ooc.BackupAndRestore(fresh, backup, save_freq=3)])
    assert sorted(p.name for p in backup.iterdir()) == ["notes.txt"]


def test_keras_shuffling_the_batches_is_refused_and_warned_about(tmp_path, data):
    keras = pytest.importorskip("keras")
    split = ooc.open(data).train
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = split.batches(20, shuffle=True, seed=1, shuffle_window=4)
    with pytest.warns(UserWarning, match="4x the reads"), \
            pytest.raises(ValueError, match="Pass shuffle=False to fit"):
        model.fit(batches, epochs=1, verbose=0,  # fit's default: shuffle=True
                  callbacks=[ooc.BackupAndRestore(batches, tmp_path / "b")])


class StopAt:
    """Callbacks that stop a fit the way a kill or a callback would."""

    @staticmethod
    def epoch_end(epoch: int):  # raised in on_epoch_end before the backup's (validation time)
        keras = pytest.importorskip("keras")

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise KeyboardInterrupt

        return Stop()

    @staticmethod
    def batch_end(batch: int):  # raised after a batch of whatever epoch comes first
        keras = pytest.importorskip("keras")

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, b, logs=None):
                if b == batch:
                    raise KeyboardInterrupt

        return Stop()

    @staticmethod
    def stop_training(epoch: int, batch: int):  # as TerminateOnNaN does
        keras = pytest.importorskip("keras")

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, b, logs=None):
                if self.model.e == epoch and b == batch:
                    self.model.stop_training = True

            def on_epoch_begin(self, e, logs=None):
                self.model.e = e

        return Stop()


@pytest.mark.parametrize(("stop", "saved"), [
    # save_freq divides the epoch: its last batch is backed up at its end, not before
    (StopAt.epoch_end(1), (1, 1, 40)),
    (StopAt.stop_training(1, 13), (1, 1, 14)),
    (StopAt.stop_training(1, 59), (2, 2, 0)),  # at the epoch's last batch: the next one's
])
def test_a_fit_stopped_at_an_epochs_end_or_inside_it_resumes_exactly(tmp_path, data, stop,
                                                                     saved):
    keras = pytest.importorskip("keras")
    split = ooc.open(data).train

    def fit(callbacks: list, batches) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        with contextlib.suppress(KeyboardInterrupt):
            model.fit(batches, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        return model.get_weights()

    options = {"shuffle": True, "seed": 4}
    straight = fit([], split.batches(50, **options))
    backup = tmp_path / "b"
    batches = split.batches(50, **options)
    # kept when fit ends (stop_training ends it normally)
    fit([stop, ooc.BackupAndRestore(batches, backup, save_freq=20, delete_checkpoint=False)],
        batches)
    state = json.loads((backup / "ooc-backup.json").read_text())
    assert (state["keras_epoch"], state["batches"]["epoch"], state["batches"]["position"]) \
        == saved
    batches = split.batches(50, **options)
    # stopped inside the resumed epoch, then resumed again (the optimizer's step count
    # saved must be the steps taken, not a whole epoch's)
    fit([StopAt.stop_training(1, 5),
         ooc.BackupAndRestore(batches, backup, save_freq=20, delete_checkpoint=False)],
        batches)
    batches = split.batches(50, **options)  # a kill-like stop inside the resumed epoch
    fit([StopAt.batch_end(3),
         ooc.BackupAndRestore(batches, backup, save_freq=20, delete_checkpoint=False)],
        batches)
    if batches.skip:  # resumed inside an epoch: these batches are left shortened
        with pytest.raises(ValueError, match="make them again"):
            fit([ooc.BackupAndRestore(batches, backup)], batches)
    batches = split.batches(50, **options)
    resumed = fit([ooc.BackupAndRestore(batches, backup, save_freq=20)], batches)
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not [f for f in warnings.filters if "ran out of data" in str(f[1])]


def test_a_fit_interrupted_inside_an_epoch_leaves_no_false_reordering(data):
    keras = pytest.importorskip("keras")
    split = ooc.open(data).train
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = split.batches(20, shuffle=True, seed=1)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 40:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[Interrupt()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning of Keras reordering would raise
        model.fit(batches, epochs=1, shuffle=False, verbose=0)
    assert not batches.reordered
