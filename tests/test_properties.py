"""Property tests: what is written comes back, and batch plans cover every row once."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ooc
from ooc.batching import BatchPlan, coo_indices, densify

FORMATS = ("hdf5", "npy")
DENSE_DTYPES = (np.int32, np.int64, np.float32, np.float64, np.uint8)
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def dataset_path(directory: str, fmt: str) -> Path:
    return Path(directory) / ("d.h5" if fmt == "hdf5" else "d")


# --- what is written comes back ---------------------------------------------------------

def sparse_chunk(rng: np.random.Generator, n_rows: int, n_cols: int,
                 unsorted: bool) -> scipy.sparse.csr_matrix:
    """CSR float32, ~10% dense, some empty rows; indices shuffled within rows if asked."""
    x = scipy.sparse.random(n_rows, n_cols, density=0.1, format="csr", dtype=np.float32,
                            random_state=rng)
    x.data = rng.uniform(0.5, 2.0, x.nnz).astype(np.float32) * rng.choice([-1, 1], x.nnz)
    keep = (rng.random(n_rows) > 0.25).astype(np.float32)  # about a quarter: empty rows
    x = scipy.sparse.csr_matrix(scipy.sparse.diags(keep) @ x, dtype=np.float32)
    x.eliminate_zeros()
    if unsorted and x.nnz:
        indices, data = x.indices.copy(), x.data.copy()
        for r in range(n_rows):
            lo, hi = x.indptr[r], x.indptr[r + 1]
            perm = lo + rng.permutation(hi - lo)[::-1]
            indices[lo:hi], data[lo:hi] = indices[perm], data[perm]
        x = scipy.sparse.csr_matrix((data, indices, x.indptr.copy()), shape=x.shape)
    return x


@st.composite
def chunk_lists(draw: st.DrawFn) -> dict:
    """Chunks for one split: x, labels and (optionally) explicit row ids per chunk."""
    sparse = draw(st.booleans())
    n_cols = draw(st.integers(1, 30 if sparse else 6))
    sizes = draw(st.lists(st.integers(0, 40), max_size=5))
    dtype = np.dtype(np.float32 if sparse else draw(st.sampled_from(DENSE_DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    chunks = []
    for n in sizes:
        if sparse:
            x = sparse_chunk(rng, n, n_cols, unsorted=draw(st.booleans()))
        else:
            x = draw(hnp.arrays(dtype, (n, n_cols)))
        y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 4)))
        explicit = draw(st.booleans())
        ids = draw(hnp.arrays(np.int64, n, elements=st.integers(-2**40, 2**40))) \
            if explicit else None
        chunks.append((x, y, ids))
    return {"sparse": sparse, "n_cols": n_cols, "dtype": dtype, "chunks": chunks}


def expected_columns(spec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense x, y and row_ids the writer's contract promises for ``spec``."""
    xs, ys, ids, next_id = [], [], [], 0
    for x, y, row_ids in spec["chunks"]:
        n = x.shape[0]
        xs.append(x.toarray() if spec["sparse"] else x)
        ys.append(y)
        ids.append(np.arange(next_id, next_id + n) if row_ids is None else row_ids)
        if n:
            next_id = int(ids[-1].max()) + 1
    x = np.concatenate(xs) if xs else np.zeros((0, spec["n_cols"]), spec["dtype"])
    return x, np.concatenate(ys or [np.zeros(0, np.int64)]), np.concatenate(
        ids or [np.zeros(0, np.int64)]).astype(np.int64)


def check_sparse_slice(got: scipy.sparse.csr_matrix, want: np.ndarray) -> None:
    assert scipy.sparse.issparse(got) and got.format == "csr"
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got.toarray(), want)
    assert got.nnz == np.count_nonzero(want)  # no stored zeros, no duplicates
    assert got.has_sorted_indices
    assert got.indptr[0] == 0 and got.indptr[-1] == len(got.indices) == len(got.data)
    for r in range(got.shape[0]):
        row = got.indices[got.indptr[r]:got.indptr[r + 1]]
        assert (np.diff(row) > 0).all(), f"row {r}: indices {row} not strictly increasing"


def write(path: Path, fmt: str, spec: dict, block_bytes: int | None) -> None:
    """Write ``spec``; with ``block_bytes``, in blocks/chunks of that many bytes.

    The default 1 MiB blocks hold these tiny splits whole; 64-byte blocks (8 rows
    of int64 labels, fewer of wide x) make every slice cross block boundaries.
    """
    with pytest.MonkeyPatch.context() as mp:
        if block_bytes is not None:
            mp.setattr(f"ooc.store.{'hdf5' if fmt == 'hdf5' else 'npy'}.BLOCK_BYTES",
                       block_bytes)
        with ooc.create(path, fmt) as writer:
            for x, y, row_ids in spec["chunks"]:
                writer.append("train", x, y, row_ids)


@pytest.mark.parametrize("block_bytes", [None, 64], ids=["default-blocks", "64-byte-blocks"])
@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(spec=chunk_lists(), data=st.data())
def test_slices_return_what_was_written(fmt, block_bytes, spec, data):
    want_x, want_y, want_ids = expected_columns(spec)
    n = len(want_y)
    with tempfile.TemporaryDirectory() as tmp:
        path = dataset_path(tmp, fmt)
        write(path, fmt, spec, block_bytes)
        with ooc.open(path, verify=data.draw(st.sampled_from(["once", "always"]))) as ds:
            if not spec["chunks"]:
                assert ds.splits == {}
                return
            split = ds.train
            assert len(split) == n and split.shape == (n, spec["n_cols"])
            assert split.is_sparse == spec["sparse"]
            assert split.x.dtype == spec["dtype"]
            if n:
                np.testing.assert_array_equal(split.label_counts, np.bincount(want_y))
            for _ in range(3):
                a = data.draw(st.integers(0, n), label="a")
                b = data.draw(st.integers(a, n), label="b")
                x = split.x[a:b]
                if spec["sparse"]:
                    check_sparse_slice(x, want_x[a:b])
                else:
                    assert x.dtype == spec["dtype"] and x.shape == (b - a, spec["n_cols"])
                    np.testing.assert_array_equal(x, want_x[a:b])
                np.testing.assert_array_equal(split.y[a:b], want_y[a:b])
                np.testing.assert_array_equal(split.row_ids[a:b], want_ids[a:b])
                assert split.y[a:b].dtype == split.row_ids[a:b].dtype == np.int64
            if spec["sparse"]:
                check_sparse_slice(split.x[:], want_x)
            else:
                np.testing.assert_array_equal(split.x[:], want_x)


# --- batch plans ------------------------------------------------------------------------

def plan_args() -> st.SearchStrategy[dict]:
    def window(shuffle: bool) -> st.SearchStrategy[int]:
        return st.integers(1, 5) if shuffle else st.just(1)

    return st.booleans().flatmap(lambda shuffle: st.fixed_dictionaries({
        "n_rows": st.integers(0, 500),
        "batch_size": st.integers(1, 64),
        "shuffle": st.just(shuffle),
        "seed": st.integers(0, 2**63 - 1),
        "shuffle_window": window(shuffle),
        "drop_remainder": st.booleans(),
    }))


def batch_rows(plan: BatchPlan, i: int, epoch: int) -> np.ndarray:
    where = plan.locate(i, epoch)
    rows = np.arange(where.start, where.stop)
    if where.take is None:
        return rows
    take = np.asarray(where.take)
    assert take.ndim == 1 and ((take >= 0) & (take < len(rows))).all()
    return rows[take]


@SETTINGS
@given(args=plan_args(), epoch=st.integers(0, 10_000))
def test_batch_plan_covers_each_row_once(args, epoch):
    plan = BatchPlan(**args)
    n, size = args["n_rows"], args["batch_size"]
    full, rest = divmod(n, size)
    partial = bool(rest) and not args["drop_remainder"]
    assert plan.num_batches == full + partial
    assert plan.has_partial_batch == partial

    batches = [batch_rows(plan, i, epoch) for i in range(plan.num_batches)]
    sizes = sorted(len(b) for b in batches)
    assert sizes == ([rest] if partial else []) + [size] * full

    rows = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    covered = n if partial or not rest else full * size
    np.testing.assert_array_equal(np.sort(rows), np.arange(covered))  # each row once

    window = args["shuffle_window"]
    for b in batches:  # every batch is cut from at most `window` consecutive batches
        assert len(b) == 0 or b.max() - b.min() < window * size
    if not args["shuffle"]:
        for i, b in enumerate(batches):
            np.testing.assert_array_equal(b, np.arange(i * size, min((i + 1) * size, n)))

    with pytest.raises(IndexError):
        plan.locate(plan.num_batches, epoch)

    # Deterministic: a second plan, asked in another order and after another epoch
    # (so nothing cached is reused), gives the same rows.
    other = BatchPlan(**args)
    if other.num_batches:
        batch_rows(other, 0, epoch + 1)
    again = [batch_rows(other, i, epoch) for i in reversed(range(other.num_batches))][::-1]
    for b, c in zip(batches, again, strict=True):
        np.testing.assert_array_equal(b, c)
    for i, b in enumerate(batches):  # and the same plan, asked again
        np.testing.assert_array_equal(batch_rows(plan, i, epoch), b)


@SETTINGS
@given(n_rows=st.integers(0, 300), n_cols=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
def test_densify_equals_toarray(n_rows, n_cols, seed):
    x = sparse_chunk(np.random.default_rng(seed), n_rows, n_cols, unsorted=False)
    dense = densify(x)
    np.testing.assert_array_equal(dense, x.toarray())
    assert dense.dtype == x.dtype and dense.flags.c_contiguous
    if dense.nbytes >= 16 * 1024:  # large batches start on 64 bytes: TensorFlow shares them
        assert dense.__array_interface__["data"][0] % 64 == 0


@SETTINGS
@given(n_rows=st.integers(0, 300), n_cols=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
def test_coo_indices_equal_tocoo(n_rows, n_cols, seed):
    x = sparse_chunk(np.random.default_rng(seed), n_rows, n_cols, unsorted=False)
    coo = x.tocoo()
    np.testing.assert_array_equal(coo_indices(x), np.stack([coo.row, coo.col], axis=1))
    assert coo_indices(x).dtype == np.int64


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.lists(st.sampled_from(["a", "b", "é", "数据", "😀", "", "a b"]),
                                max_size=12), max_size=6))
def test_token_table_assigns_ids_in_order_of_first_appearance(chunks):
    from ooc.text.vocab import TokenTable

    table, expected = TokenTable(), {}
    for words in chunks:
        ids = table.add(words)
        for word in words:
            expected.setdefault(word, len(expected))
        assert ids.tolist() == [expected[w] for w in words]
    assert table.words == list(expected)
    assert table.lookup(["zz", *expected]).tolist() == [-1, *expected.values()]


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.lists(st.integers(0, 30), max_size=40), max_size=6))
def test_word_counter_counts_and_first_positions_over_chunks(chunks):
    from ooc.text.sequence_vectorizer import WordCounter

    counter, first, position = WordCounter(), {}, 0
    for ids in chunks:  # global ids, as in source order, each chunk's training tokens
        counter.table.add([str(i) for i in range(max(ids, default=-1) + 1)])
        counter.count(np.array(ids, dtype=np.int64))
        for offset, i in enumerate(ids):
            first.setdefault(i, position + offset)
        position += len(ids)
    seen = sorted(first)
    assert [int(counter.first[i]) for i in seen] == [first[i] for i in seen]
    counts = np.bincount(np.array([i for ids in chunks for i in ids], dtype=np.int64),
                         minlength=len(counter.counts))
    np.testing.assert_array_equal(counter.counts, counts)
