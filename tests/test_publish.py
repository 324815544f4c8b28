"""Publishing a dataset never destroys what is not one: --overwrite, demo, work dirs, resume."""

from __future__ import annotations

import numpy as np
import pytest

import ooc
from ooc.cli import main


def one_line(err: str) -> str:
    """The single error line a command printed (fails on a traceback or several lines)."""
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def small_dataset(path, fmt="hdf5"):
    with ooc.create(path, fmt) as w:
        w.append("train", np.zeros((4, 2), np.float32), [0, 1, 0, 1])
    return path


# --------------------------------------------------------------- overwrite
@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_overwrite_replaces_only_an_ooc_dataset(tmp_path, fmt):
    user_file = tmp_path / "notes.h5"
    user_file.write_text("my notes")
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for path in (user_file, folder):
        with pytest.raises(ooc.OutputConflictError, match="not an ooc dataset"):
            ooc.create(path, fmt, overwrite=True)
    assert user_file.read_text() == "my notes"
    assert (folder / "thesis.tex").read_text() == "years of work"
    # a dataset folder with a user's file put inside is not replaced either
    dataset = small_dataset(tmp_path / "d", "npy")
    (dataset / "readme.txt").write_text("mine")
    with pytest.raises(ooc.OutputConflictError, match="readme.txt"):
        ooc.create(dataset, fmt, overwrite=True)
    # an ooc dataset (of either format) is replaced
    for old in ("hdf5", "npy"):
        path = small_dataset(tmp_path / f"old-{old}-{fmt}", old)
        with ooc.create(path, fmt, overwrite=True) as w:
            w.append("train", np.ones((3, 2), np.float32), [0, 1, 0])
        assert len(ooc.open(path).train) == 3


@pytest.fixture
def corpus(textkit):
    texts, labels = textkit.docs(120, seed=5)
    return textkit.write_csv("same.csv", texts, labels)


def test_preprocess_overwrite_never_replaces_its_input(textkit, corpus, capsys):
    before = corpus.read_bytes()
    assert main(["preprocess", str(corpus), "--out", str(corpus), "--overwrite", "--quiet",
                 "--workers", "1"]) == 1
    assert "is the input" in one_line(capsys.readouterr().err)
    assert corpus.read_bytes() == before


def test_preprocess_overwrite_never_deletes_a_user_folder(textkit, corpus, capsys):
    precious = textkit.tmp_path / "precious"
    precious.mkdir()
    (precious / "a.txt").write_text("keep me")
    assert main(["preprocess", str(corpus), "--out", str(precious), "--overwrite", "--quiet",
                 "--workers", "1"]) == 1
    err = one_line(capsys.readouterr().err)
    assert "not an ooc dataset" in err and "move it away" in err
    assert (precious / "a.txt").read_text() == "keep me"


def test_folder_input_is_never_its_own_output(textkit):
    tree = textkit.corpus("tree", docs=200, seed=6)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    for out in (tree, tree / "inside.h5"):
        with pytest.raises(ooc.OutputConflictError, match="input"):
            textkit.preprocess(tree, out=out, format="npy", overwrite=True)
    assert sorted(p for p in tree.rglob("*") if p.is_file()) == files
    assert not list(tree.rglob("*.ooc-*"))
