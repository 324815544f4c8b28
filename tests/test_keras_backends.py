"""Keras 3 on its torch backend with no TensorFlow installed (issue 18 item 2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]


def test_fit_on_the_torch_backend_without_tensorflow(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        sys.modules["tensorflow"] = None  # as where TensorFlow is not installed
        os.environ["KERAS_BACKEND"] = "torch"
        import numpy as np, scipy.sparse, keras, ooc
        x = np.random.default_rng(0).random((2000, 10)).astype(np.float32)
        with ooc.create({str(tmp_path / "dense")!r}, "npy") as w:
            w.append("train", x, (x[:, 0] > 0.5).astype(int))
        with ooc.create({str(tmp_path / "sparse")!r}, "npy") as w:
            w.append("train", scipy.sparse.csr_matrix(x), (x[:, 0] > 0.5).astype(int))
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        for name in ("dense", "sparse"):  # sparse rows come densified by default
            fit = model.fit(ooc.open({str(tmp_path)!r} + "/" + name).train.batches(
                64, shuffle=True, seed=1), epochs=3, verbose=0)
            assert fit.history["accuracy"][-1] > 0.8, fit.history
        split = ooc.open({str(tmp_path / "sparse")!r}).train
        for call in (lambda: split.batches(64, sparse="tensor"),
                     lambda: split.iter_batches(64, sparse="tensor"),
                     lambda: split.to_tf_dataset(64)):
            try:
                call()
            except ooc.OocError as exc:
                assert "TensorFlow is not installed" in str(exc), exc
            else:
                raise AssertionError("no error")
        try:
            split.batches(64, sparse="csr")
        except ValueError as exc:
            assert "torch backend takes no sparse batches" in str(exc)
        print(keras.backend.backend(), "ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("torch ok")
