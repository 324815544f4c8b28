"""ooc.BackupAndRestore: a fit killed mid-epoch resumes, in a new process, with exactly the
batches that were to come (issue 18 item 5), on each Keras backend installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
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
    # one weights file: each backup removes the one before
    assert sorted(p.name for p in backup.iterdir()) == [
        "notes.txt", "ooc-backup-1-0.weights.h5", "ooc-backup.json"]

    # a state of batches in another order is refused before the model is touched
    other = split.batches(100, shuffle=True, seed=2)
    with pytest.raises(ooc.OocError, match="another order"):
        model.fit(other, epochs=2, shuffle=False, verbose=0,
                  callbacks=[ooc.BackupAndRestore(other, backup)])
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
