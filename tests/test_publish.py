"""Publishing a dataset never destroys what is not one: --overwrite, demo, work dirs, resume."""

from __future__ import annotations

from pathlib import Path

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


def test_preprocess_never_replaces_a_user_file_named_like_its_rejects(textkit, corpus, capsys):
    mine = textkit.tmp_path / "out.h5.rejects.csv"
    mine.write_text("my notes\n")
    args = ["preprocess", str(corpus), "--out", str(textkit.tmp_path / "out.h5"), "--quiet",
            "--workers", "1", "--on-bad-row", "skip"]
    assert main(args) == 1
    assert "which ooc did not write" in one_line(capsys.readouterr().err)
    assert mine.read_text() == "my notes\n"
    mine.write_text("path,line,reason,record\n")  # an earlier run's: replaced
    assert main(args) == 0 and not mine.exists()  # no bad rows this time


def test_folder_input_is_never_its_own_output(textkit):
    tree = textkit.corpus("tree", docs=200, seed=6)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    for out in (tree, tree / "inside.h5"):
        with pytest.raises(ooc.OutputConflictError, match="input"):
            textkit.preprocess(tree, out=out, format="npy", overwrite=True)
    assert sorted(p for p in tree.rglob("*") if p.is_file()) == files
    assert not list(tree.rglob("*.ooc-*"))


# ------------------------------------------------------ interrupted runs
class Crash(BaseException):
    """A crash injected into a run (not an OocError, so the work directory is kept)."""


def preprocess_args(corpus: Path, out: Path) -> list[str]:
    return ["preprocess", str(corpus), "--out", str(out), "--quiet", "--workers", "1",
            "--top-k", "50"]


def crash_at(monkeypatch, module, name):
    original = getattr(module, name)

    def crashing(*args, **kwargs):
        raise Crash(name)

    monkeypatch.setattr(module, name, crashing)
    return original


def interrupted_run(corpus: Path, out: Path, monkeypatch) -> list[str]:
    """Run ``ooc preprocess`` until it crashes before the shuffle pass; return its args."""
    args = preprocess_args(corpus, out)
    original = crash_at(monkeypatch, ooc.preprocess, "shuffle_pass")
    with pytest.raises(Crash):
        main(args)
    monkeypatch.setattr(ooc.preprocess, "shuffle_pass", original)
    return args


def test_rerun_without_resume_keeps_an_interrupted_runs_work(textkit, corpus, monkeypatch,
                                                             capsys):
    out = textkit.tmp_path / "out.h5"
    args = interrupted_run(corpus, out, monkeypatch)
    work = textkit.tmp_path / "out.h5.ooc-work"
    state = (work / "state.json").read_text()
    assert main(args) == 1
    err = one_line(capsys.readouterr().err)
    assert str(work) in err and "passes done: tokenize, vocab, select" in err
    assert "--resume" in err and "--restart" in err and "iB" in err
    assert (work / "state.json").read_text() == state  # kept as it was
    assert main([*args, "--restart"]) == 0
    assert "wrote" in capsys.readouterr().out and not work.exists()
    assert main([*args, "--resume", "--restart"]) == 2  # argparse: one or the other


def removal_killed(monkeypatch, out: Path, partway: bool) -> None:
    """Stop (as if killed) removing the work directory once ``out`` is committed.

    Right at the start, or ``partway``: after the first directory deletion
    inside it has deleted one file.
    """
    import shutil

    import ooc.text.workdir as workdir

    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if ".ooc-work" in str(path) and out.exists():
            first = next(p for p in sorted(Path(path).rglob("*")) if p.is_file())
            first.unlink()
            raise Crash(f"killed while removing the work directory, after {first}")
        return real(path, *args, **kwargs)

    def remove(self):
        raise Crash("killed before removing the work directory")

    if partway:
        monkeypatch.setattr(workdir.shutil, "rmtree", rmtree)
    else:
        monkeypatch.setattr(workdir.WorkDir, "remove", remove)


@pytest.mark.parametrize("partway", [False, True])
def test_resume_after_a_kill_while_removing_the_work_dir(textkit, corpus, monkeypatch, capsys,
                                                         partway):
    out = textkit.tmp_path / "out.h5"
    args = preprocess_args(corpus, out)
    with monkeypatch.context() as m:
        removal_killed(m, out, partway)
        with pytest.raises(Crash):
            main(args)
    assert len(ooc.open(out).train) > 0
    before = out.read_bytes()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"already complete: {out}") and "removed" in said
    assert out.read_bytes() == before
    assert not list(textkit.tmp_path.glob("out.h5.ooc-work*"))


def test_a_work_dir_without_run_id_is_never_taken_for_a_finished_run(textkit, corpus,
                                                                     monkeypatch, capsys):
    # as an older ooc left it, beside a dataset that ooc.create wrote: both lack run_id
    import json

    out = textkit.tmp_path / "out.h5"
    args = interrupted_run(corpus, out, monkeypatch)
    state_file = textkit.tmp_path / "out.h5.ooc-work" / "state.json"
    state = json.loads(state_file.read_text())
    del state["run_id"]
    state_file.write_text(json.dumps(state))
    small_dataset(out)
    assert main([*args, "--resume", "--overwrite"]) == 0
    assert not capsys.readouterr().out.startswith("already complete")
    assert len(ooc.open(out).train) > 4  # the corpus, resumed, not the stale dataset


def test_plain_rerun_after_a_kill_while_removing_the_work_dir(textkit, corpus, monkeypatch,
                                                              capsys):
    out = textkit.tmp_path / "out.h5"
    args = preprocess_args(corpus, out)
    with monkeypatch.context() as m:
        removal_killed(m, out, partway=True)
        with pytest.raises(Crash):
            main(args)
    assert main(args) == 1
    err = one_line(capsys.readouterr().err)
    assert "this dataset is complete" in err and "now removed" in err and "--overwrite" in err
    assert not list(textkit.tmp_path.glob("out.h5.ooc-work*"))
    assert len(ooc.open(out).train) > 0


# -------------------------------------------------------------------- demo
DEMO = ["demo", "--docs", "200", "--top-k", "50", "--epochs", "1"]


def test_demo_never_replaces_a_dataset_or_a_corpus(tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    dataset = small_dataset(proj / "mine.h5")
    before = dataset.read_bytes()
    assert main([*DEMO, "--out", str(dataset)]) == 1
    assert "already exists" in one_line(capsys.readouterr().err)
    assert dataset.read_bytes() == before and not (proj / "corpus.csv").exists()
    (proj / "corpus.csv").write_text("label,text\nmine,my own corpus\n")
    assert main([*DEMO, "--out", str(dataset), "--overwrite"]) == 1
    assert "not the sample corpus" in one_line(capsys.readouterr().err)
    assert (proj / "corpus.csv").read_text() == "label,text\nmine,my own corpus\n"
    assert dataset.read_bytes() == before
    assert sorted(p.name for p in proj.iterdir()) == ["corpus.csv", "mine.h5"]


def test_demo_npy_is_never_named_like_hdf5(tmp_path, capsys):
    assert main([*DEMO, "--format", "npy", "--out", str(tmp_path / "mine.h5")]) == 1
    assert "--format npy writes a directory" in one_line(capsys.readouterr().err)
    assert not list(tmp_path.iterdir())
    from ooc.demo import demo_out

    assert demo_out(None, "npy").suffix == "" and demo_out(None, "hdf5").suffix == ".h5"


def test_demo_reuses_only_the_same_corpus(tmp_path):
    from ooc.demo import write_corpus

    path = write_corpus(tmp_path / "corpus.csv", 100, seed=1, classes=3)
    inode = path.stat().st_ino
    assert write_corpus(path, 100, seed=1, classes=3).stat().st_ino == inode  # reused
    with pytest.raises(ooc.OutputConflictError, match="--docs 100 --classes 3 --seed 2"):
        write_corpus(path, 100, seed=2, classes=3)
    assert path.stat().st_ino == inode and [p.name for p in tmp_path.iterdir()] == [path.name]
