"""A dataset stored in class order is reported at read time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import load_tool

import ooc

CLASS_MIX = Path(__file__).resolve().parents[1] / "tools" / "class_mix.py"


def write(path, labels: np.ndarray, fmt: str = "npy", **options) -> ooc.Dataset:
    with ooc.create(path, fmt, **options) as w:
        for a in range(0, len(labels), 1000):
            w.append("train", np.zeros((len(labels[a:a + 1000]), 3), np.float32),
                     labels[a:a + 1000])
    return ooc.open(path)


@pytest.mark.parametrize("shuffle", [False, True])
def test_class_sorted_batches_are_reported_once(tmp_path, shuffle):
    ds = write(tmp_path / "sorted", np.repeat(np.arange(4), 1000))
    with pytest.warns(ooc.ClassSortedWarning, match=r"single class of 4.*shuffle=True"):
        for _ in ds.train.iter_batches(32, shuffle=shuffle, seed=1,
                                       shuffle_window=4 if shuffle else 1):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(ds.train.iter_batches(32, shuffle=shuffle, seed=1, epoch=1))  # epoch 0 only


def test_mixed_or_single_class_datasets_are_not_reported(tmp_path):
    rng = np.random.default_rng(0)
    mixed = write(tmp_path / "mixed", rng.integers(0, 4, 4000))
    skewed = write(tmp_path / "skewed", (rng.random(4000) < 0.02).astype(int))  # 98% one class
    one = write(tmp_path / "one", np.zeros(4000, int))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ds in (mixed, skewed, one):
            list(ds.train.iter_batches(32, shuffle=True, seed=1))


@pytest.mark.parametrize("fmt", ["npy", "hdf5"])
def test_class_sorted_source_written_shuffled_gives_every_class_in_every_batch(tmp_path, fmt):
    # issue 15: written in appended order, contiguous batches of 512 held 1.02-1.31 classes
    labels = np.repeat(np.arange(4), 5000)
    ds = write(tmp_path / "shuffled", labels, fmt, shuffle=True, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not reported as class-sorted
        classes = [len(np.unique(y)) for _, y in ds.train.iter_batches(512, drop_remainder=True)]
    assert np.mean(classes) == 4
    tool = load_tool(CLASS_MIX, "_ooc_tests_class_mix")
    source, stored, overall = tool.class_mix(ds.train, 512, 4)
    assert stored.every_class() == 1 and source.every_class() == 0
    expected = tool.random_deviation(overall, 512)
    assert 0.7 * expected < stored.deviation(overall) < 1.3 * expected
