"""The guide's models (ooc.models), tools/train_*_model.py, and ``ooc demo`` end to end."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import keras
import numpy as np
import pytest
from conftest import load_tool

import ooc
from ooc.cli import main as ooc_main
from ooc.models import mlp_model, sepcnn_model
from ooc.preprocess import PreprocessConfig, preprocess
from ooc.sample_corpus import generate_docs, write_sample_corpus

TOOLS = Path(__file__).resolve().parents[1] / "tools"
SMALL = {"vocab": 2000, "words_per_doc": 30}


def _load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` (tools/ is not a package)."""
    return load_tool(TOOLS / f"{name}.py", name)


@pytest.mark.parametrize(("num_classes", "units", "activation", "loss"), [
    (2, 1, "sigmoid", "binary_crossentropy"),
    (5, 5, "softmax", "sparse_categorical_crossentropy"),
])
def test_mlp_model_output_and_loss(num_classes: int, units: int, activation: str,
                                   loss: str) -> None:
    model = mlp_model(3, 16, 0.1, input_shape=(40,), num_classes=num_classes)
    assert model.output_shape == (None, units)
    assert model.layers[-1].activation.__name__ == activation
    assert model.loss == loss
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dropout", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.predict(np.zeros((3, 40), np.float32), verbose=0).shape == (3, units)


@pytest.mark.parametrize(("num_classes", "units", "loss"), [
    (2, 1, "binary_crossentropy"),
    (5, 5, "sparse_categorical_crossentropy"),
])
def test_sepcnn_model_output_and_loss(num_classes: int, units: int, loss: str) -> None:
    model = sepcnn_model(blocks=2, filters=8, embedding_dim=12, input_shape=(30,),
                         num_classes=num_classes, num_features=50)
    assert model.output_shape == (None, units) and model.loss == loss
    convs = [layer for layer in model.layers
             if isinstance(layer, keras.layers.SeparableConv1D)]
    assert [c.filters for c in convs] == [8, 8, 16, 16]
    assert model.layers[0].input_dim == 50 and model.layers[0].output_dim == 12
    ids = np.random.default_rng(0).integers(0, 50, (4, 30)).astype(np.int32)
    assert model.predict(ids, verbose=0).shape == (4, units)


def test_sepcnn_features_depend_on_the_input_at_initialization() -> None:
    # With the guide's random_uniform init the pooled features varied ~1e-6 of their size
    # across inputs (float32 noise), and training never left chance.
    model = sepcnn_model(input_shape=(150,), num_classes=4, num_features=2000)
    features = keras.Model(model.inputs, model.layers[-3].output)
    ids = np.random.default_rng(0).integers(0, 2000, (64, 150)).astype(np.int32)
    pooled = np.asarray(features(ids))
    assert pooled.std(axis=0).mean() > 0.05 * np.abs(pooled).mean()


def test_model_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="num_classes >= 2"):
        mlp_model(input_shape=(10,), num_classes=1)
    with pytest.raises(ValueError, match="at least pool_size"):
        sepcnn_model(blocks=3, input_shape=(8,), num_classes=2, num_features=10)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny 3-class corpus preprocessed both ways."""
    root = tmp_path_factory.mktemp("train")
    corpus = str(write_sample_corpus(root / "corpus.csv", 900, seed=1, classes=3, **SMALL))
    common = {"inputs": (corpus,), "workers": 1, "progress": False, "overwrite": True}
    preprocess(PreprocessConfig(out=str(root / "ngram.h5"), top_k=300, **common))
    preprocess(PreprocessConfig(out=str(root / "seq.h5"), vectorizer="sequence", top_k=400,
                                max_length=30, **common))
    return {"ngram": root / "ngram.h5", "sequence": root / "seq.h5", "root": root}


def _accuracy(out: str) -> float:
    return float(out.split("Validation accuracy:")[1].split(",")[0])


def test_train_ngram_model_runs_and_saves(datasets: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tool = _load_tool("train_ngram_model")
    saved = datasets["root"] / "mlp.keras"
    args = [str(datasets["ngram"]), "--epochs", "1", "--batch-size", "64", "--quiet",
            "--save", str(saved)]
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert 0 <= _accuracy(out) <= 1 and "s per epoch" in out and "Epochs: 1" in out
    assert saved.is_file()


def test_train_sequence_model_runs(datasets: dict[str, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    tool = _load_tool("train_sequence_model")
    with ooc.open(datasets["sequence"]) as ds:
        assert tool.num_features(ds) == len(ds.vectorizer.words) + 1 <= 400
    args = [str(datasets["sequence"]), "--epochs", "1", "--batch-size", "64", "--quiet",
            "--filters", "8", "--embedding-dim", "16", "--workers", "2"]
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert "sepcnn" in out and 0 <= _accuracy(out) <= 1 and "(best epoch 1 of 1" in out


def _diverging_dataset(path: Path) -> Path:
    """Validation labels are the training rule flipped: every epoch makes val_loss worse."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    with ooc.create(path, format="npy") as w:
        w.set_metadata(classes=["neg", "pos"])
        w.append("train", x[:400], y[:400])
        w.append("val", x[400:450], 1 - y[400:450])
        w.append("test", x[450:], y[450:])
    return path


def test_training_ends_with_the_best_epochs_weights(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # Ends by reaching --epochs, not by patience: Keras alone keeps the last weights then.
    path = _diverging_dataset(tmp_path / "diverging")
    saved = tmp_path / "mlp.keras"
    args = [str(path), "--epochs", "4", "--patience", "10", "--batch-size", "32",
            "--learning-rate", "0.01", "--quiet", "--save", str(saved)]
    assert _load_tool("train_ngram_model").main(args) == 0
    out = capsys.readouterr().out
    assert "(best epoch 1 of 4, weights restored)" in out and "Epochs: 4" in out
    printed_loss = float(out.split("loss:")[1].split()[0])
    with ooc.open(path) as ds:
        loss, acc = keras.models.load_model(saved).evaluate(ds.val.x[:], ds.val.y[:], verbose=0)
    assert loss == pytest.approx(printed_loss, abs=1e-3)
    assert acc == pytest.approx(_accuracy(out), abs=1e-3)
    with ooc.open(path) as ds:  # the held-out test split is scored with the same weights
        loss, acc = keras.models.load_model(saved).evaluate(ds.test.x[:], ds.test.y[:],
                                                            verbose=0)
    test_line = out.split("Test accuracy:")[1]
    assert float(test_line.split(",")[0]) == pytest.approx(acc, abs=1e-3)
    assert float(test_line.split("loss:")[1].split()[0]) == pytest.approx(loss, abs=1e-3)
    assert "(50 rows" in test_line


def test_train_sequence_model_rejects_ngram_dataset(
        datasets: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tool = _load_tool("train_sequence_model")
    assert tool.main([str(datasets["ngram"]), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--vectorizer sequence" in err


@pytest.mark.slow
def test_sepcnn_recipe_learns_on_a_sample_corpus(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_sample_corpus(tmp_path / "c.csv", 4000, seed=2, classes=4, vocab=2000,
                                 words_per_doc=60)
    preprocess(PreprocessConfig(inputs=(str(corpus),), out=str(tmp_path / "seq.h5"),
                                vectorizer="sequence", top_k=2000, max_length=100, workers=1,
                                progress=False))
    args = [str(tmp_path / "seq.h5"), "--epochs", "8", "--batch-size", "64", "--quiet",
            "--embedding-dim", "64"]
    assert _load_tool("train_sequence_model").main(args) == 0
    out = capsys.readouterr().out
    assert _accuracy(out) > 0.45, out  # 4 classes: chance is 0.25; about 0.60 measured


def test_sample_corpus_is_seeded_csv(tmp_path: Path) -> None:
    path = write_sample_corpus(tmp_path / "c.csv", 50, seed=3, **SMALL)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label,text" and len(lines) == 51
    texts, labels = generate_docs(50, seed=3, **SMALL)
    assert lines[1].startswith(f"{labels[0]},") and texts[0][:20] in lines[1]
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]


def test_demo_runs_the_main_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "demo" / "demo"
    args = ["demo", "--out", str(out_path), "--docs", "1500", "--top-k", "500",
            "--epochs", "3", "--batch-size", "16", "--format", "npy"]
    assert ooc_main(args) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "demo" / "corpus.csv").is_file()
    assert "wrote" in out and "features  500" in out
    with ooc.open(out_path) as ds:
        assert len(ds.train) + len(ds.val) == 1500 and ds.train.shape[1] == 500
        assert ds.metadata["vectorizer"]["kind"] == "ngram"
    accuracy = float(out.split("val acc")[1].split()[0])
    assert accuracy > 0.4, out  # 4 classes: chance is 0.25
