"""Batch buffers: placement, and recycling only what nothing refers to."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

from ooc import _buffers, _platform
from ooc._buffers import POOL_BUFFERS, POOL_BYTES, BufferPool, aligned_empty, size_class

SHAPE = (256, 64)  # 64 KiB of float32: large enough to be pooled


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    monkeypatch.setattr(_buffers, "_POOL", BufferPool())


def test_a_released_buffer_is_reused():
    a = aligned_empty(SHAPE, np.float32)
    first = address(a)
    del a
    assert address(aligned_empty(SHAPE, np.float32)) == first


KEEPS = {"array": lambda b: b, "slice": lambda b: b[3:5], "memoryview": memoryview,
         "reshaped view": lambda b: b.reshape(-1), "dtype view": lambda b: b.view(np.uint8),
         "DLPack": np.from_dlpack}


@pytest.mark.parametrize("refcounts", ["real", "meaningless"])
@pytest.mark.parametrize("keep", sorted(KEEPS))
def test_a_buffer_is_not_reused_while_anything_refers_to_it(keep, refcounts, monkeypatch):
    if refcounts == "meaningless":  # CPython does not promise getrefcount's values
        monkeypatch.setattr(sys, "getrefcount", lambda obj: 2)
    a = aligned_empty(SHAPE, np.float32)
    a[:] = 7.0
    held = KEEPS[keep](a)
    expected = np.array(held)
    del a
    gc.collect()
    others = [aligned_empty(SHAPE, np.float32) for _ in range(4)]
    for other in others:
        other[:] = -1.0
    assert np.array_equal(np.asarray(held), expected)


def test_a_buffer_comes_back_after_a_garbage_collection_while_in_use():
    a = aligned_empty(SHAPE, np.float32)
    gc.collect()  # must not take the pool's record of the buffer lent out
    del a
    aligned_empty(SHAPE, np.float32)
    assert _buffers._POOL.reused == 1


def test_a_tensor_made_without_a_copy_keeps_its_buffer():
    tf = pytest.importorskip("tensorflow")
    a = aligned_empty(SHAPE, np.float32)
    a[:] = 7.0
    tensor = tf.experimental.dlpack.from_dlpack(a.__dlpack__())  # as keras_dataset does
    del a
    gc.collect()
    for other in [aligned_empty(SHAPE, np.float32) for _ in range(4)]:
        other[:] = -1.0
    assert (tensor.numpy() == 7.0).all()


def test_batches_of_varying_size_share_buffers():
    pool = _buffers._POOL
    rng = np.random.default_rng(0)
    for nbytes in rng.integers(150_000, 165_000, 200):  # a sparse batch's values, say
        aligned_empty((int(nbytes),), np.uint8)  # released at once
    assert pool.taken == 200 and pool.reused >= 190


def test_size_classes_round_up_by_at_most_an_eighth():
    for n in [1, 7, 8, 9, 4096, 4097, 150_000, 1 << 20, (1 << 20) + 1, 20_480_000]:
        assert n <= size_class(n) <= n + n // 8 + 1
    assert len({size_class(n) for n in range((1 << 20) + 1, (1 << 21) + 1)}) == 8


def test_no_pool_where_a_forked_child_could_share_it():
    code = ("import numpy as np; from ooc import _buffers; "
            "a = _buffers.aligned_empty((4096, 16), np.float32, zeros=True); "
            "print(_buffers._POOL is None, a.ctypes.data % 64 == 0, (a == 0).all())")
    env = {**os.environ, "OOC_PORTABLE": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert run.stdout.split() == ["True", "True", "True"]


def test_reused_buffers_come_back_zeroed_when_asked():
    a = aligned_empty(SHAPE, np.float32)
    a[:] = 3.0
    del a
    b = aligned_empty(SHAPE, np.float32, zeros=True)
    assert (b == 0).all()


def test_the_pool_stays_bounded_whatever_is_held():
    held = [aligned_empty((1024, 1024), np.uint8) for _ in range(3 * POOL_BUFFERS)]
    pool = _buffers._POOL
    assert pool._n_buffers() <= POOL_BUFFERS
    del held
    for n in range(1, 400):  # many sizes, each released at once
        aligned_empty((n, 4096), np.uint8)
        assert pool._n_buffers() <= POOL_BUFFERS
        assert pool._pooled_bytes() <= POOL_BYTES


@pytest.mark.skipif(not _platform.FORK_HOOK, reason="no os.register_at_fork here")
def test_a_forked_child_does_not_share_the_parents_buffers():
    a = aligned_empty(SHAPE, np.float32)
    parent_buffer = address(a)
    del a
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the pool starts empty, so its buffers are its own
        os.write(write, b"1" if _buffers._POOL._n_buffers() == 0 else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert address(aligned_empty(SHAPE, np.float32)) == parent_buffer


@pytest.mark.parametrize("loop", ["scipy's", "toarray(out=)"])
def test_densified_batches_equal_toarray_in_reused_buffers(loop, monkeypatch):
    import scipy.sparse

    from ooc import batching

    if loop != "scipy's":
        monkeypatch.setattr(batching, "_csr_todense", None)
    for seed in range(3):  # each batch in the buffer the last one left dirty
        x = scipy.sparse.random(64, 700, density=0.05, format="csr", dtype=np.float32,
                                random_state=seed)
        dense = batching.densify(x)
        assert dense.ctypes.data % 64 == 0 and np.array_equal(dense, x.toarray())
        dense += 1.0
        del dense
    assert _buffers._POOL.reused >= 2


def test_an_array_dying_runs_no_python_code_that_could_swallow_ctrl_c():
    # Python code run at deallocation (a weakref callback, __del__) turns a
    # KeyboardInterrupt arriving there into "Exception ignored in ...": the run goes on.
    batch = aligned_empty(SHAPE, np.float32)
    piece = batch[3:9]
    del batch
    calls: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        del piece
    finally:
        sys.setprofile(None)
    assert calls == []
    assert address(aligned_empty(SHAPE, np.float32)) % 64 == 0  # and the buffer is free again
    assert _buffers._POOL.reused == 1
