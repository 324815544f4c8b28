"""Batch buffers: placement, and recycling only what nothing refers to."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from ooc import _buffers, _platform
from ooc._buffers import POOL_BUFFERS, POOL_BYTES, BufferPool, aligned_empty

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


@pytest.mark.parametrize("keep", ["array", "slice", "memoryview", "reshaped view"])
def test_a_buffer_is_not_reused_while_anything_refers_to_it(keep):
    a = aligned_empty(SHAPE, np.float32)
    a[:] = 7.0
    views = {"array": lambda b: b, "slice": lambda b: b[3:5],
             "memoryview": memoryview, "reshaped view": lambda b: b.reshape(-1)}
    held = views[keep](a)
    del a
    gc.collect()
    others = [aligned_empty(SHAPE, np.float32) for _ in range(4)]
    for other in others:
        other[:] = -1.0
    assert (np.asarray(held) == 7.0).all()


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
