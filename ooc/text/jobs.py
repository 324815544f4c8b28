"""The map steps of ``ooc preprocess``, run in worker processes.

Each job is a top-level function of picklable arguments; fitted state is
read from the work directory (memory-mapped ``.npy`` files) once per
process and cached.  :func:`ordered_map` runs jobs with a bounded number in
flight, so reading the input never runs ahead of the workers.  A result
holding more than :data:`SPOOL_BYTES` of arrays comes back through a file
in the pool's spool directory rather than the pool's pipe.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from .._report import release_memory
from ..sharded_writer import PartTarget
from ..store._disk import save_npy, writing
from .ngram_vectorizer import NgramVectorizer
from .sequence_vectorizer import padded, ragged_ranks, sequence_lengths
from .spill import TokenChunk, load_bucket, load_chunk
from .splits import TRAIN

PIECE_ROWS = 1024  # rows vectorized at once: bounds the transient arrays of a job
# a result with more array bytes than this is written to a file and read back: through
# the pool's pipe (pickled, 64 KiB at a time) it cost the main process six times the CPU
SPOOL_BYTES = 1 << 20
_CACHE: dict[str, Any] = {}


class WorkerPool:
    """A ``multiprocessing`` pool that, when stopped on an error or Ctrl-C, first waits
    (at most :attr:`DRAIN_S` seconds) for the jobs it started to hand back their results.

    ``Pool.terminate()`` deadlocks when a worker is caught half-way through sending a
    large result: it waits for the result pipe's lock, which that worker holds while
    nobody reads the pipe any more (python/cpython#73945).
    """

    DRAIN_S = 60.0

    def __init__(self, pool: Any, spool: Path) -> None:
        self._pool = pool
        self.spool = spool  # where workers leave large results (:func:`ordered_map`)
        self._started: list[Any] = []

    def apply_async(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Start ``fn(*args)`` in a worker; its ``AsyncResult``."""
        result = self._pool.apply_async(fn, args)
        self._started = [r for r in self._started if not r.ready()]
        self._started.append(result)
        return result

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Start the job ``fn(*args)`` (a large result comes back spooled, see
        :func:`ordered_map`); its ``AsyncResult``."""
        return self.apply_async(spooling_job, (self.spool, fn, *args))

    def close(self) -> None:
        """Take no more jobs; wait for the workers to exit."""
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + self.DRAIN_S
        try:
            for result in self._started:
                result.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self._pool.terminate()


def ordered_map(pool: Any, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]],
                window: int) -> Iterator[Any]:
    """``fn(*item)`` for every item, in order, at most ``window`` running at once, in this
    process (``pool`` None), a :class:`WorkerPool` or a :class:`~ooc.text.cluster.DaskPool`.

    Freed memory is handed back to the OS after every job, on both sides.
    """
    if pool is None:
        for item in items:
            yield run_job(fn, *item)
        return
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.run(fn, item))
        if len(pending) >= window:
            yield _unspool(pending.popleft().get())
            release_memory()
    while pending:
        yield _unspool(pending.popleft().get())
        release_memory()


def run_job(fn: Callable[..., Any], *args: Any) -> Any:
    """Run one job; give freed memory back to the OS after it."""
    try:
        return fn(*args)
    finally:
        release_memory()


@dataclass(frozen=True)
class _Spooled:
    """A result a worker wrote to ``path``: its pickle, then its out-of-band buffers."""

    path: Path
    sizes: tuple[int, ...]  # of the pickle, then of each buffer


def spooling_job(spool: Path, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one job; a result of :data:`SPOOL_BYTES` or more comes back as :class:`_Spooled`."""
    result = run_job(fn, *args)
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    if sum(v.nbytes for v in views) < SPOOL_BYTES:
        return result
    path = spool / f"{uuid.uuid4().hex}.bin"  # unique on every host sharing the spool
    with writing(path), open(path, "wb") as f:
        for part in (data, *views):
            f.write(part)
    return _Spooled(path, (len(data), *(v.nbytes for v in views)))


def _unspool(result: Any) -> Any:
    """A job's result, read back (and its file removed) when it was spooled."""
    if not isinstance(result, _Spooled):
        return result
    raw = bytearray(sum(result.sizes))
    with open(result.path, "rb") as f:
        if f.readinto(raw) != len(raw):
            raise OSError(f"{result.path}: a worker's result is shorter than written")
    result.path.unlink()
    bounds = np.cumsum((0, *result.sizes)).tolist()
    parts = [memoryview(raw)[a:b] for a, b in itertools.pairwise(bounds)]
    return pickle.loads(parts[0], buffers=parts[1:])


def save_state(directory: Path, settings: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write fitted state (JSON settings plus one ``.npy`` per array).

    Every file is written under a temporary name and renamed into place, so
    memory maps of the previous state stay valid and a crash leaves either
    state; ``settings.json`` goes last.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        save_npy(directory / f"{name}.npy", np.asarray(arr))
    tmp = directory / f"settings.json.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(settings))
    os.replace(tmp, directory / "settings.json")


def load_state(directory: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read what :func:`save_state` wrote, arrays memory-mapped."""
    settings = json.loads((directory / "settings.json").read_text())
    # plain ndarray views of the maps: indexing a np.memmap subclass is several times slower
    arrays = {p.stem: np.asarray(np.load(p, mmap_mode="r")) for p in directory.glob("*.npy")}
    return settings, arrays


def _cached(directory: Path, build: Callable[[Path], Any]) -> Any:
    key = str(directory)
    stamp = (directory / "settings.json").stat().st_mtime_ns
    hit = _CACHE.get(key)
    if hit is None or hit[0] != stamp:
        hit = _CACHE[key] = (stamp, build(directory))
    return hit[1]


def _ngram_state(directory: Path) -> NgramVectorizer:
    settings, arrays = load_state(directory)
    return NgramVectorizer.from_arrays(settings, arrays)


def load_fields(chunk_path: Path, *names: str) -> list[np.ndarray]:
    """Some arrays of a token chunk file (an ``.npz`` reads members lazily)."""
    with np.load(chunk_path) as z:
        return [z[name] for name in names]


# ------------------------------------------------------------- fit passes
def sequence_longest(state: Path, chunk_path: Path) -> int:
    """Longest training sequence of one token chunk."""
    ranks = _cached(state, lambda d: np.load(d / "ranks.npy", mmap_mode="r"))
    chunk = load_chunk(chunk_path)[0].of_split(TRAIN)
    return int(sequence_lengths(np.asarray(ranks), chunk.ids, chunk.offsets).max(initial=0))


# ---------------------------------------------------------------- write
def norms_path(chunk_path: Path) -> Path:
    """Where the row norms of a token chunk are kept."""
    return chunk_path.with_name(chunk_path.stem + ".norms.npy")


def load_with_norms(chunk_path: Path) -> TokenChunk:
    """A token chunk with its row norms, when they were computed."""
    chunk = load_chunk(chunk_path)[0]
    norms = norms_path(chunk_path)
    return replace(chunk, norms=np.load(norms)) if norms.exists() else chunk


def load_rows(source: tuple[Any, ...]) -> TokenChunk:
    """Rows to write: ``("chunk", path, split code)`` or ``("bucket", root, split, b, seed)``."""
    if source[0] == "chunk":
        return load_with_norms(source[1]).of_split(source[2])
    _, root, split, bucket, seed = source
    return load_bucket(root, split, bucket, seed)


def transform(kind: str, state: Path, source: tuple[Any, ...],
              classes: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """Vectorize rows: ``(x, y, row_ids)``, x float32 CSR (n-gram) or int32 sequences not
    yet padded (:class:`~ooc.text.sequence_vectorizer.Ragged`: padded by the process that
    writes them, since pickling the padding cost more than adding it)."""
    rows = load_rows(source)
    y = classes[rows.labels].astype(np.int64)
    if kind == "ngram":
        vec = _cached(state, _ngram_state)
        parts = [vec.transform_ids(p.ids.astype(np.int64), p.offsets, p.norms)
                 for p in rows.pieces(PIECE_ROWS)]
        x = scipy.sparse.vstack(parts, format="csr") if parts else scipy.sparse.csr_matrix(
            (0, len(vec.selected_keys)), dtype=np.float32)
        return x, y, rows.row_ids
    ranks = _cached(state, lambda d: np.load(d / "ranks.npy", mmap_mode="r"))
    length = json.loads((state / "settings.json").read_text())["length"]
    return ragged_ranks(np.asarray(ranks), rows.ids, rows.offsets, length), y, rows.row_ids


def write_part(target: PartTarget, kind: str, state: Path, sources: list[tuple[Any, ...]],
               classes: np.ndarray) -> int:
    """Vectorize the rows of ``sources`` into one part of a sharded dataset (committed
    whole, so a retried job replaces it); its number of rows."""
    n = 0
    with target.create() as writer:
        for source in sources:
            x, y, row_ids = transform(kind, state, source, classes)
            writer.append(target.split, padded(x), y, row_ids)
            n += len(y)
    return n
