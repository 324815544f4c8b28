"""Pieces the benchmarks share: a seeded dense dataset, free localhost ports."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

import ooc


def make_dense(path: Path, rows: int, cols: int, classes: int) -> Path:
    """A seeded ``.npy`` dataset of random float32 rows and labels (kept once written)."""
    if not path.exists():
        rng = np.random.default_rng(0)
        with ooc.create(path, "npy") as w:
            for a in range(0, rows, 50_000):
                n = min(50_000, rows - a)
                w.append("train", rng.random((n, cols), dtype=np.float32),
                         rng.integers(0, classes, n))
    return path


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on localhost now (for a cluster of local processes)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
