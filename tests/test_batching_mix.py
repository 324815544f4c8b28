"""A dataset stored in class order is reported at read time."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ooc


def write(path, labels: np.ndarray) -> ooc.Dataset:
    with ooc.create(path, "npy") as w:
        w.append("train", np.zeros((len(labels), 3), np.float32), labels)
    return ooc.open(path)


@pytest.mark.parametrize("shuffle", [False, True])
def test_class_sorted_batches_are_reported_once(tmp_path, shuffle):
    ds = write(tmp_path / "sorted", np.repeat(np.arange(4), 1000))
    with pytest.warns(ooc.ClassSortedWarning, match="single class of 4"):
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
