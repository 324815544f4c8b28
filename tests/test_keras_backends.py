"""Keras 3 on its torch and JAX backends with no TensorFlow installed (issue 18 item 2)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_fit_on_a_backend_without_tensorflow(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    script = textwrap.dedent(f"""
        import os, sys
        sys.modules["tensorflow"] = None  # as where TensorFlow is not installed
        os.environ["KERAS_BACKEND"] = {backend!r}
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
        feeds = [("dense", "dense"), ("sparse", "dense")]  # sparse rows densified by default
        if {backend!r} == "jax":  # JAX takes scipy CSR batches (as BCOO)
            feeds.append(("sparse", "csr"))
        for name, sparse in feeds:
            fit = model.fit(ooc.open({str(tmp_path)!r} + "/" + name).train.batches(
                64, shuffle=True, seed=1, sparse=sparse), epochs=3, shuffle=False, verbose=0)
            assert fit.history["accuracy"][-1] > 0.8, (name, sparse, fit.history)
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
        if {backend!r} == "torch":
            try:
                split.batches(64, sparse="csr")
            except ValueError as exc:
                assert "torch backend takes no sparse batches" in str(exc)
            else:
                raise AssertionError("no error")
        print(keras.backend.backend(), "ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith(f"{backend} ok")
