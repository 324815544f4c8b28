"""The seeded external shuffle (:mod:`ooc.shuffle`) shared by ``ooc preprocess`` and the writer."""

from __future__ import annotations

import numpy as np
import pytest

from ooc import shuffle
from ooc.shuffle import Rows, Schema, concat

SCHEMA = Schema(columns={"y": ("<i8", ()), "x": ("<f4", (3,))}, ragged={"tokens": "<i4"})


def ragged_rows(n: int, seed: int = 0, row_ids: np.ndarray | None = None) -> Rows:
    """``n`` rows whose every value derives from the row's position, some rows empty."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 6, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.repeat(np.arange(n), lengths).astype(np.int32)
    x = np.arange(n, dtype=np.float32)[:, None] * [1, 2, 3]
    ids = np.arange(n) if row_ids is None else row_ids
    return Rows(ids, {"y": np.arange(n) % 4, "x": x.astype(np.float32)}, {"tokens": tokens},
                offsets)


def spilled(tmp_path, rows: Rows, n_buckets: int, seed: int, max_bytes: int,
            piece: int = 997) -> list[Rows]:
    """Scatter ``rows`` in pieces, then read the buckets back in order."""
    root = tmp_path / f"spill-{n_buckets}-{max_bytes}"
    for start in range(0, len(rows), piece):
        shuffle.scatter(root, rows.take(np.arange(start, min(len(rows), start + piece))),
                        n_buckets, seed, SCHEMA)
    return list(shuffle.ordered_buckets(root, n_buckets, seed, SCHEMA, max_bytes))


def assert_same_rows(a: Rows, b: Rows) -> None:
    np.testing.assert_array_equal(a.row_ids, b.row_ids)
    for name in SCHEMA.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.ragged["tokens"], b.ragged["tokens"])


def test_order_is_the_one_preprocess_has_always_written():
    # recorded from ooc preprocess before its shuffle became ooc.shuffle (seeds 123 and 0)
    assert shuffle.order(np.arange(16), 123).tolist() == [
        5, 11, 7, 4, 8, 10, 12, 2, 3, 1, 13, 14, 6, 9, 0, 15]
    assert shuffle.order(np.arange(16), 0).tolist() == [
        14, 7, 4, 2, 5, 9, 0, 1, 10, 11, 12, 13, 6, 8, 3, 15]


@pytest.mark.parametrize(("n_buckets", "max_bytes"),
                         [(1, 1 << 30), (3, 1 << 30), (64, 1 << 30), (1, 50_000), (4, 12_000)])
def test_every_bucket_count_and_budget_gives_the_in_memory_order(tmp_path, n_buckets,
                                                                 max_bytes):
    rows = ragged_rows(5000)
    parts = spilled(tmp_path, rows, n_buckets, seed=7, max_bytes=max_bytes)
    got = concat(parts)
    assert_same_rows(got, rows.shuffled(7))
    # every row once, each with its own values
    np.testing.assert_array_equal(np.sort(got.row_ids), np.arange(5000))
    np.testing.assert_array_equal(got.columns["x"][:, 2], 3 * got.row_ids)
    lengths = np.diff(got.offsets)
    np.testing.assert_array_equal(got.ragged["tokens"], np.repeat(got.row_ids, lengths))
    if max_bytes < 1 << 20:  # split buckets: none loaded above the budget
        assert len(parts) > n_buckets
        assert max(8 * len(p) + p.columns["x"].nbytes + 12 * len(p) + p.ragged["tokens"].nbytes
                   for p in parts) <= max_bytes
    assert not any((tmp_path / f"spill-{n_buckets}-{max_bytes}").iterdir())  # consumed


def test_order_is_seeded():
    ids = np.arange(1000)
    assert np.array_equal(shuffle.order(ids, 1), shuffle.order(ids, 1))
    assert not np.array_equal(shuffle.order(ids, 1), shuffle.order(ids, 2))
    # a function of the row ids, not of their positions
    reversed_ids = ids[::-1]
    np.testing.assert_array_equal(reversed_ids[shuffle.order(reversed_ids, 1)],
                                  ids[shuffle.order(ids, 1)])


def test_order_is_uniform():
    # every row equally likely at every position, over 3,000 seeds
    n, seeds = 6, 3000
    counts = np.zeros((n, n), int)
    for seed in range(seeds):
        counts[shuffle.order(np.arange(n), seed), np.arange(n)] += 1
    assert np.abs(counts - seeds / n).max() < 100, counts  # 5 standard deviations
    # and no trace of the source order in a long permutation
    ids = np.arange(100_000)
    assert abs(np.corrcoef(ids, shuffle.order(ids, 3))[0, 1]) < 0.02


def test_rows_sharing_a_row_id_stay_together_in_appended_order(tmp_path):
    rows = ragged_rows(3000, row_ids=np.repeat([5, 1, 9], 1000))
    parts = spilled(tmp_path, rows, n_buckets=2, seed=0, max_bytes=4000, piece=400)
    got = concat(parts)
    for rid in (1, 5, 9):
        positions = got.columns["y"][got.row_ids == rid]
        np.testing.assert_array_equal(positions, rows.columns["y"][rows.row_ids == rid])
    assert_same_rows(got, rows.shuffled(0))


def test_an_empty_or_missing_bucket_loads_as_no_rows(tmp_path):
    empty = shuffle.load_bucket(tmp_path / "none", SCHEMA, 0)
    assert len(empty) == 0 and empty.columns["x"].shape == (0, 3)
    assert empty.offsets.tolist() == [0]
    assert list(shuffle.ordered_buckets(tmp_path / "none", 4, 0, SCHEMA, 1000)) == []


def test_scattering_no_rows_writes_nothing(tmp_path):
    shuffle.scatter(tmp_path / "spill", SCHEMA.empty(), 8, 0, SCHEMA)
    assert not (tmp_path / "spill").exists()
