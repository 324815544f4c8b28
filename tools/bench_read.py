"""Benchmark ooc's read path against the same data held in memory.

Three measurements, side by side in one run, for a dense dataset
(default 1M x 500 int32) and a sparse one (default 200k x 20,000 float32,
about 150 non-zeros a row), in both backends:

1. batches/s and MB/s of ooc batches vs the same batches copied from
   in-memory arrays (``np.array(x[i:i+b])``, ``csr[i:i+b].toarray()``), warm
   page cache (dropped and read back in order first, see
   :func:`rewarm_page_cache`), the two taking turns batch by batch, median
   of ``--repeats`` epochs, same batch order; three ways: ooc's batches as
   fed (dense ones are views of the file, which cost almost nothing until
   read), both sides' batches then read once by a consumer (the fair
   comparison for views), and ooc's ``copy=True`` batches; plus the
   ceiling of any reader that copies out of the page cache: a bare
   ``preadv`` against ``np.copyto`` of the same bytes, one reused buffer
   each (table 1b);
2. one Keras ``fit`` epoch of a small MLP from ``split.batches(...)`` and
   from ``split.to_tf_dataset(...)`` vs ``model.fit(x, y, batch_size=b)`` on
   the numpy arrays in memory: each feed trains its own model, one epoch at
   a time in turn, so noise on the shared machine hits all alike; medians
   over rounds 2..N (tracing left out), each epoch timed from the end of its
   first step; ratios against each in-memory feed (``shuffle=True``, like
   for like, and ``shuffle=False``);
3. peak RSS (``ru_maxrss``, from the OS) of a fresh process iterating a
   dataset and summing every value vs one 8x larger;
4. whole epochs in order (``shuffle=False``), each reader reading a whole
   epoch in its turn, so caches and the allocator see what a training loop
   does: ooc's batches against in-memory copies and against a plain reader
   of the same files with no ooc code (h5py slices for HDF5, ``np.load``
   memory maps for ``.npy``); every batch consumed once, dense ones copied
   with ``np.array(x)`` and sparse ones densified, by every reader alike.

Usage::

    python tools/bench_read.py --dir data/bench            # full size
    python tools/bench_read.py --dir data/bench --scale 0.1  # quick look
    python tools/bench_read.py --dir data/bench --scale 0.3 --sparse-batch 256 \
        --skip fit rss                                      # the reads, issue 15's sizes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse

import ooc
from ooc import _buffers
from ooc._report import peak_rss_bytes
from ooc._tensorflow import import_keras

CLASSES = 5
CHUNK_ROWS = 50_000


def dense_chunks(rows: int, cols: int, seed: int):
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        y = rng.integers(0, CLASSES, n)
        x = rng.integers(0, 20_000, (n, cols), dtype=np.int32)
        x[:, 0] = y * 1000  # something to learn
        yield x, y


def sparse_chunks(rows: int, cols: int, nnz: int, seed: int):
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        y = rng.integers(0, CLASSES, n)
        counts = rng.poisson(nnz, n)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = rng.integers(0, cols, indptr[-1])
        data = rng.random(indptr[-1], dtype=np.float32)
        x = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n, cols))
        x.sum_duplicates()
        yield x, y


def build(path: Path, fmt: str, chunks) -> Path:
    if path.exists():
        return path
    t0 = time.perf_counter()
    with ooc.create(path, fmt) as w:
        for x, y in chunks:
            w.append("train", x, y)
    print(f"  wrote {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def rewarm_page_cache(path: Path) -> None:
    """Drop the dataset's files from the page cache, then read them back in order.

    A file just written sits in the page cache in the pieces its writer
    wrote (HDF5 writes chunk by chunk), and copying out of small pieces
    costs more per byte than out of the large folios read-ahead builds
    (measured: about 25% on this machine).  This puts every dataset in the
    state of one read once from disk, whoever wrote it.
    """
    for file in ([path] if path.is_file() else sorted(path.rglob("*.npy"))):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while os.read(fd, 16 << 20):
                pass
        finally:
            os.close(fd)


def load_in_memory(split: ooc.Split):
    """The whole split in RAM, read through ooc once (also warms the page cache)."""
    parts = [split.x[a:a + CHUNK_ROWS] for a in range(0, len(split), CHUNK_ROWS)]
    x = scipy.sparse.vstack(parts, format="csr") if split.is_sparse else np.concatenate(parts)
    return x, split.y[:]


def time_alternating(first: Callable[[int], tuple], second: Callable[[int], tuple],
                     n_batches: int) -> tuple[float, float]:
    """Seconds each reader spends on one epoch, the two taking turns batch by batch.

    Turns this fine-grained keep a slow spell of the shared machine from
    landing on one side only.
    """
    clock = time.perf_counter
    spent = [0.0, 0.0]
    for i in range(n_batches):
        t0 = clock()
        first(i)
        t1 = clock()
        second(i)
        spent[0] += t1 - t0
        spent[1] += clock() - t1
    return spent[0], spent[1]


def bench_reads(split: ooc.Split, batch_size: int, repeats: int) -> dict:
    """ooc's batches against in-memory copies, three ways (see :data:`READ_WAYS`)."""
    x_mem, y_mem = load_in_memory(split)
    views = split.batch_reader(batch_size, shuffle=True, seed=0)
    copies = split.batch_reader(batch_size, shuffle=True, seed=0, copy=True)
    order = [views.plan.locate(i, 0) for i in range(len(views))]

    def mem_batch(i: int) -> tuple:
        s = order[i]
        x = x_mem[s.start:s.stop]
        return (x.toarray() if split.is_sparse else np.array(x)), np.array(y_mem[s.start:s.stop])

    first = mem_batch(0)[0]
    sink = np.empty((batch_size, *first.shape[1:]), first.dtype)

    def read_once(batch: Callable[[int], tuple]) -> Callable[[int], tuple]:
        def consumed(i: int) -> tuple:
            x, y = batch(i)
            np.copyto(sink[:len(x)], x)  # every byte of x read once, as a model would
            return x, y
        return consumed

    for ooc_batch in (views.read, copies.read):
        assert all(np.array_equal(a, b)
                   for a, b in zip(mem_batch(3), ooc_batch(3), strict=True))
    ways = {"batches": (mem_batch, views.read),
            "read_once": (read_once(mem_batch), read_once(views.read)),
            "copy": (mem_batch, copies.read)}
    batch_bytes = sum(a.nbytes for a in mem_batch(0))
    return {way: compare_reads(mem, ooc_batch, len(order), repeats, batch_bytes)
            for way, (mem, ooc_batch) in ways.items()}


EPOCH_READERS = {
    "in-memory": "the split held in memory, each batch sliced and copied",
    "ooc": "split.batch_reader(b) (what split.batches(b, shuffle=False) returns per batch)",
    "plain": "the same files with no ooc code: h5py slices (HDF5), np.load maps (.npy)",
}


def plain_reader(path: Path, split: ooc.Split) -> Callable[[int, int], tuple]:
    """``(x, y)`` of rows ``[a, b)`` of ``train`` read the obvious way, no ooc code.

    h5py slices of an HDF5 file; slices of ``np.load(..., mmap_mode="r")``
    for a ``.npy`` directory.  Sparse ``x`` comes back as a ``csr_matrix``.
    """
    if path.is_file():
        h5 = h5py.File(path, "r")
        arrays = {key: h5[f"train/{key}"] for key in ("x", "y")} if not split.is_sparse else {
            key: h5[f"train/{key}"] for key in ("x/data", "x/indices", "x/indptr", "y")}
    else:
        keys = ("x", "y") if not split.is_sparse else ("x/data", "x/indices", "x/indptr", "y")
        arrays = {key: np.load(path / "train" / f"{key}.npy", mmap_mode="r") for key in keys}
    n_cols = split.shape[1]

    def read(a: int, b: int) -> tuple:
        if not split.is_sparse:
            return arrays["x"][a:b], arrays["y"][a:b]
        indptr = np.asarray(arrays["x/indptr"][a:b + 1])
        lo, hi = int(indptr[0]), int(indptr[-1])
        x = scipy.sparse.csr_matrix(
            (np.asarray(arrays["x/data"][lo:hi]), np.asarray(arrays["x/indices"][lo:hi]),
             indptr - lo), shape=(b - a, n_cols))
        return x, arrays["y"][a:b]

    return read


def epoch_readers(split: ooc.Split, path: Path, batch_size: int) -> dict[str, Callable[[], int]]:
    """One whole in-order epoch per call, for each reader; every batch consumed once.

    Consumed means what a model's input step does with it: dense ``x``
    copied with ``np.array(x)``, sparse ``x`` densified (ooc densifies its
    own batches), ``y`` copied; by every reader alike.
    """
    x_mem, y_mem = load_in_memory(split)
    reader = split.batch_reader(batch_size)
    plain = plain_reader(path, split)
    starts = range(0, len(split), batch_size)
    sparse = split.is_sparse

    def consume(x: Any, y: Any) -> int:
        if not sparse:
            x = np.array(x)
        elif scipy.sparse.issparse(x):  # ooc's sparse batches come densified
            x = x.toarray()
        return len(x) + len(np.array(y))

    def in_memory() -> int:
        return sum(consume(x_mem[a:a + batch_size], y_mem[a:a + batch_size]) for a in starts)

    def from_ooc() -> int:
        return sum(consume(*reader.read(i)) for i in range(len(reader)))

    def from_plain() -> int:
        return sum(consume(*plain(a, min(a + batch_size, len(split)))) for a in starts)

    k = min(1, len(reader) - 1)
    (x1, y1), (x2, y2) = reader.read(k), plain(*reader.plan.batch_rows(k))
    assert np.array_equal(x1, x2.toarray() if sparse else x2) and np.array_equal(y1, y2)
    return {"in-memory": in_memory, "ooc": from_ooc, "plain": from_plain}


def bench_epochs(split: ooc.Split, path: Path, batch_size: int, repeats: int) -> dict:
    """Seconds per in-order epoch of each reader, each reading a whole epoch in turn.

    One epoch of each first (verify-once, page cache, buffers), then
    ``repeats`` rounds of one epoch each, the order of the readers rotated
    round by round; medians over the rounds, of wall time and of the
    process' CPU time (which a busy shared machine disturbs less), and how
    many of ooc's large buffers came from its pool.
    """
    epochs = epoch_readers(split, path, batch_size)
    names = list(epochs)
    for name in names:
        assert epochs[name]() == 2 * len(split)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    pool = getattr(_buffers, "_POOL", None)
    taken, reused = getattr(pool, "taken", 0), getattr(pool, "reused", 0)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            epochs[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    out: dict[str, Any] = {f"{name}_s": statistics.median(t) for name, t in times.items()}
    for name in ("ooc", "plain"):
        out[f"{name}/in-memory"] = out["in-memory_s"] / out[f"{name}_s"]
        out[f"{name}/in-memory_cpu"] = statistics.median(cpu["in-memory"]) / statistics.median(
            cpu[name])
    out["ooc/plain"] = out["plain_s"] / out["ooc_s"]
    out["epochs"], out["cpu_epochs"] = times, cpu
    out["batches"] = -(-len(split) // batch_size)
    # only ooc's reader takes pooled buffers
    out["pool_taken"] = getattr(pool, "taken", 0) - taken
    out["pool_reused"] = getattr(pool, "reused", 0) - reused
    return out


READ_WAYS = {
    "batches": "ooc's batches as a feed gets them (dense: read-only views of the file)",
    "read_once": "each batch then read once (copied to one buffer), both sides",
    "copy": "ooc's copy=True batches (new, writable arrays)",
}


def compare_reads(mem_batch: Callable[[int], tuple], ooc_batch: Callable[[int], tuple],
                  n_batches: int, repeats: int, batch_bytes: int) -> dict:
    """Batches/s and MB/s of two readers taking turns; median of ``repeats`` epochs."""
    time_alternating(mem_batch, ooc_batch, n_batches)  # warm: verify-once, page cache
    mem_t, ooc_t = [], []
    for r in range(repeats):  # who goes first alternates too
        if r % 2:
            o, m = time_alternating(ooc_batch, mem_batch, n_batches)
        else:
            m, o = time_alternating(mem_batch, ooc_batch, n_batches)
        mem_t.append(m)
        ooc_t.append(o)
    mem_s, ooc_s = statistics.median(mem_t), statistics.median(ooc_t)
    return {"batches": n_batches, "mem_bps": n_batches / mem_s, "ooc_bps": n_batches / ooc_s,
            "mem_MBps": n_batches * batch_bytes / mem_s / 1e6,
            "ooc_MBps": n_batches * batch_bytes / ooc_s / 1e6,
            "ratio": statistics.median(m / o for m, o in zip(mem_t, ooc_t, strict=True))}


def bench_kernel_copy(npy_file: Path, batch_bytes: int, repeats: int) -> dict:
    """The ceiling of any read: ``preadv`` alone vs ``memcpy`` alone, 1 buffer each.

    The bytes of one on-disk batch after another, copied into one reused
    buffer (placed as ooc places its buffers) by the kernel from the page
    cache, and by NumPy from the same bytes held in memory, in turns.
    """
    from ooc._buffers import empty_for_read

    start = np.load(npy_file, mmap_mode="r").offset  # the data's first byte
    n = min(2000, (npy_file.stat().st_size - start) // batch_bytes)
    held = np.fromfile(npy_file, np.uint8, n * batch_bytes, offset=start)
    fd = os.open(npy_file, os.O_RDONLY)
    buf = empty_for_read((batch_bytes,), np.dtype(np.uint8), start)
    assert all(start + i * batch_bytes & 4095 == start & 4095 for i in range(n))
    try:
        def copy(i: int) -> None:
            np.copyto(buf, held[i * batch_bytes:(i + 1) * batch_bytes])

        def pread(i: int) -> None:
            os.preadv(fd, [buf], start + i * batch_bytes)

        times = [time_alternating(copy, pread, n) for _ in range(repeats)]
    finally:
        os.close(fd)
    copy_s, pread_s = (statistics.median(t[k] for t in times) for k in (0, 1))
    return {"bytes": batch_bytes, "copy_MBps": n * batch_bytes / copy_s / 1e6,
            "pread_MBps": n * batch_bytes / pread_s / 1e6,
            "ratio": statistics.median(c / p for c, p in times)}


def mlp(n_features: int, sparse: bool):
    keras = import_keras()

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((n_features,), sparse=sparse),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def epoch_timer(times: list[float]) -> Any:
    """A Keras callback appending each epoch's time, from the end of its first step.

    Leaving the first step out leaves out what ``fit`` sets up per call
    (iterators, the in-memory arrays' conversion to tensors), so the figure
    is the steady epoch of a long ``fit``.
    """
    keras = import_keras()

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == 1:
                self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if self.steps > 1:
                elapsed = time.perf_counter() - self.t0
                times.append(elapsed * self.steps / (self.steps - 1))

    return Timer()


def bench_fit(split: ooc.Split, batch_size: int, rounds: int, workers: int) -> dict:
    """Seconds per epoch of each feed, epochs alternating feed by feed.

    Every round trains one epoch of each feed's own model, so a slow spell
    of the shared machine hits all feeds alike.  Each ratio is the median over
    rounds (the first round, which traces, left out) of an ooc feed's epoch
    over one in-memory feed's epoch of the same round; the like-for-like one
    is against ``shuffle=True``, as both ooc feeds shuffle (and the premade
    batches, see :func:`premade`).
    """
    x_mem, y_mem = load_in_memory(split)
    sparse = split.is_sparse
    mode = "tensor" if sparse else "dense"
    feeds: dict[str, Callable[[Any, list], None]] = {
        "mem_noshuffle_s": lambda m, cb: m.fit(x_mem, y_mem, batch_size=batch_size,
                                               shuffle=False, verbose=0, callbacks=cb),
        "mem_shuffle_s": lambda m, cb: m.fit(x_mem, y_mem, batch_size=batch_size,
                                             shuffle=True, verbose=0, callbacks=cb),
    }
    ooc_data = {"ooc_s": split.batches(batch_size, shuffle=True, seed=0, workers=workers,
                                       sparse=mode),
                "tf_data_s": split.to_tf_dataset(batch_size, shuffle=True, seed=0, sparse=mode)}
    ooc_data["premade_s"] = premade(split.batches(batch_size, shuffle=True, seed=0,
                                                  sparse=mode, copy=True))
    for name, data in ooc_data.items():
        feeds[name] = lambda m, cb, x=data: m.fit(x, shuffle=False, verbose=0, callbacks=cb)
    models = {name: mlp(split.shape[1], sparse) for name in feeds}
    times: dict[str, list[float]] = {name: [] for name in feeds}
    for _ in range(rounds):
        for name, fit in feeds.items():
            fit(models[name], [epoch_timer(times[name])])
    out: dict[str, Any] = {name: statistics.median(t[1:]) for name, t in times.items()}
    for feed in ("ooc_s", "tf_data_s", "premade_s"):
        for mem in ("mem_shuffle_s", "mem_noshuffle_s"):
            out[f"{feed}/{mem}"] = statistics.median(
                t / m for t, m in zip(times[feed][1:], times[mem][1:], strict=True))
    out["epochs"] = times
    return out


def premade(batches: Any) -> Any:
    """A ``PyDataset`` of the same batches, all made before ``fit``.

    Its epoch costs what Keras' ``PyDataset`` feed itself costs (a thread,
    ``from_generator``, a sparse tensor's serialisation), with no reading:
    the floor of any ``PyDataset``, ooc's or hand-written.  Pass batches in
    memory (``copy=True``): views would be mapped in again after the map's
    releases.
    """
    keras = import_keras()

    class Premade(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.items = [batches[i] for i in range(len(batches))]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> Any:
            return self.items[i]

    return Premade()


def rss_probe(path: str, batch_size: int) -> None:
    """Child process: iterate every batch of train once, reading every value; print peak RSS."""
    ds = ooc.open(path)
    before = peak_rss_bytes()
    n, total = 0, 0
    for x, _y in ds.train.iter_batches(batch_size):
        n += len(x)
        total += int(x.sum(dtype=np.int64))  # touch every byte: views count once touched
    print(json.dumps({"rows": n, "peak_rss": peak_rss_bytes(), "after_open": before,
                      "sum": total}))


def bench_rss(small: Path, large: Path, batch_size: int) -> dict:
    out = {}
    for name, path in (("1x", small), ("8x", large)):
        rewarm_page_cache(path)  # both in the page-cache folios of a read from disk
        res = subprocess.run([sys.executable, __file__, "--rss-probe", str(path),
                              "--batch-size", str(batch_size)],
                             capture_output=True, text=True, check=True)
        out[name] = json.loads(res.stdout)
    out["growth"] = out["8x"]["peak_rss"] / out["1x"]["peak_rss"] - 1
    return out


def table(title: str, header: list[str]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))


def row(cells: list[object]) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def suffix(fmt: str) -> str:
    return ".h5" if fmt == "hdf5" else ""


def build_all(args: argparse.Namespace) -> dict:
    dense_rows, sparse_rows = int(1_000_000 * args.scale), int(200_000 * args.scale)
    paths = {}
    for fmt in ("hdf5", "npy"):
        ext = suffix(fmt)
        paths["dense", fmt] = build(args.dir / f"dense_{dense_rows}{ext}", fmt,
                                    dense_chunks(dense_rows, args.dense_cols, 1))
        paths["dense8", fmt] = build(args.dir / f"dense_{dense_rows // 8}{ext}", fmt,
                                     dense_chunks(dense_rows // 8, args.dense_cols, 2))
        paths["sparse", fmt] = build(args.dir / f"sparse_{sparse_rows}{ext}", fmt,
                                     sparse_chunks(sparse_rows, args.sparse_cols, args.nnz, 3))
    return paths


def head_of(src: ooc.Split, rows: int, path: Path, fmt: str) -> ooc.Split:
    """The first ``rows`` rows of ``src``, as a dataset of their own."""
    n = min(rows, len(src))
    chunks = ((src.x[a:min(a + CHUNK_ROWS, n)], src.y[a:min(a + CHUNK_ROWS, n)])
              for a in range(0, n, CHUNK_ROWS))
    return ooc.open(build(path, fmt, chunks))["train"]


def run_reads(args: argparse.Namespace, paths: dict, results: dict) -> None:
    table(f"1. batch reads, warm page cache (median of {args.repeats} epochs); ooc / "
          "in-memory for: " + "; ".join(f"({k}) {v}" for k, v in READ_WAYS.items()),
          ["data", "backend", "batch", "in-memory batches/s", "ooc batches/s",
           "in-memory MB/s", "ooc MB/s", *(f"ooc / in-memory ({k})" for k in READ_WAYS)])
    for kind, b in (("dense", args.dense_batch), ("sparse", args.sparse_batch)):
        for fmt in ("hdf5", "npy"):
            rewarm_page_cache(paths[kind, fmt])
            r = bench_reads(ooc.open(paths[kind, fmt])["train"], b, args.repeats)
            results[f"reads_{kind}_{fmt}"] = r
            fed = r["batches"]
            row([kind, fmt, b, f"{fed['mem_bps']:.0f}", f"{fed['ooc_bps']:.0f}",
                 f"{fed['mem_MBps']:.0f}", f"{fed['ooc_MBps']:.0f}",
                 *(f"{r[k]['ratio']:.2f}x" for k in READ_WAYS)])
    x_file = paths["dense", "npy"] / "train" / "x.npy"
    rewarm_page_cache(x_file)
    r = bench_kernel_copy(x_file, args.dense_batch * args.dense_cols * 4, args.repeats)
    results["kernel_copy"] = r
    table("1b. the ceiling: the kernel's page-cache copy alone vs memcpy alone, one reused "
          "buffer each, no ooc code", ["bytes per copy", "memcpy MB/s", "preadv MB/s",
                                       "preadv / memcpy"])
    row([r["bytes"], f"{r['copy_MBps']:.0f}", f"{r['pread_MBps']:.0f}", f"{r['ratio']:.2f}x"])


def run_epochs(args: argparse.Namespace, paths: dict, results: dict) -> None:
    table(f"4. whole epochs in order, each reader a whole epoch in turn (median of "
          f"{args.repeats} rounds), speed as a ratio of in-memory's (higher is faster); "
          "readers: " + "; ".join(f"({k}) {v}" for k, v in EPOCH_READERS.items()),
          ["data", "backend", "rows", "batch", "in-memory s/epoch", "ooc s/epoch",
           "plain s/epoch", "ooc / in-memory", "plain / in-memory", "ooc / plain",
           "ooc / in-memory (CPU time)", "plain / in-memory (CPU time)",
           "ooc buffers reused"])
    for kind, b in (("dense", args.dense_batch), ("sparse", args.sparse_batch)):
        for fmt in ("hdf5", "npy"):
            rewarm_page_cache(paths[kind, fmt])
            split = ooc.open(paths[kind, fmt])["train"]
            r = bench_epochs(split, paths[kind, fmt], b, args.repeats)
            results[f"epochs_{kind}_{fmt}"] = r
            row([kind, fmt, len(split), b, f"{r['in-memory_s']:.3f}", f"{r['ooc_s']:.3f}",
                 f"{r['plain_s']:.3f}", f"{r['ooc/in-memory']:.2f}x",
                 f"{r['plain/in-memory']:.2f}x", f"{r['ooc/plain']:.2f}x",
                 f"{r['ooc/in-memory_cpu']:.2f}x", f"{r['plain/in-memory_cpu']:.2f}x",
                 f"{r['pool_reused']} of {r['pool_taken']}"])


def run_fit(args: argparse.Namespace, paths: dict, results: dict) -> None:
    table(f"2. Keras fit, seconds per epoch (median of rounds 2..{args.fit_epochs}, "
          "feeds alternating epoch by epoch)",
          ["data", "backend", "rows", "in-memory, shuffle=False", "in-memory, shuffle=True",
           "ooc batches", "ooc to_tf_dataset", "premade PyDataset",
           "batches / in-memory shuffled", "batches / in-memory unshuffled",
           "to_tf_dataset / in-memory shuffled", "to_tf_dataset / in-memory unshuffled",
           "premade / in-memory shuffled"])
    for kind, b, rows in (("dense", args.dense_batch, args.fit_rows),
                          ("sparse", args.sparse_batch, args.sparse_fit_rows)):
        for fmt in ("hdf5", "npy"):
            path = args.dir / f"fit_{kind}_{rows}_{fmt}{suffix(fmt)}"
            split = head_of(ooc.open(paths[kind, fmt])["train"], rows, path, fmt)
            r = bench_fit(split, b, args.fit_epochs, args.workers)
            results[f"fit_{kind}_{fmt}"] = r
            row([kind, fmt, len(split), f"{r['mem_noshuffle_s']:.2f}",
                 f"{r['mem_shuffle_s']:.2f}", f"{r['ooc_s']:.2f}", f"{r['tf_data_s']:.2f}",
                 f"{r['premade_s']:.2f}",
                 *(f"{r[f'{feed}/{mem}']:.3f}x" for feed in ("ooc_s", "tf_data_s")
                   for mem in ("mem_shuffle_s", "mem_noshuffle_s")),
                 f"{r['premade_s/mem_shuffle_s']:.3f}x"])


def run_rss(args: argparse.Namespace, paths: dict, results: dict) -> None:
    table("3. peak RSS (VmHWM) of a fresh process iterating every batch once",
          ["backend", "rows 1x", "peak RSS 1x", "rows 8x", "peak RSS 8x", "growth"])
    for fmt in ("hdf5", "npy"):
        r = bench_rss(paths["dense8", fmt], paths["dense", fmt], args.dense_batch)
        results[f"rss_{fmt}"] = r
        row([fmt, r["1x"]["rows"], f"{r['1x']['peak_rss'] / 2**20:.0f} MiB", r["8x"]["rows"],
             f"{r['8x']['peak_rss'] / 2**20:.0f} MiB", f"{100 * r['growth']:+.1f}%"])


STEPS = {"reads": run_reads, "epochs": run_epochs, "fit": run_fit, "rss": run_rss}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=Path("data/bench"))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every row count")
    p.add_argument("--dense-cols", type=int, default=500)
    p.add_argument("--sparse-cols", type=int, default=20_000)
    p.add_argument("--nnz", type=int, default=150)
    p.add_argument("--dense-batch", type=int, default=512)
    p.add_argument("--sparse-batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fit-epochs", type=int, default=12,
                   help="rounds of one epoch per feed; the first is left out")
    p.add_argument("--fit-rows", type=int, default=200_000, help="dense rows in the fit test")
    p.add_argument("--sparse-fit-rows", type=int, default=25_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--skip", nargs="*", default=[], choices=list(STEPS))
    p.add_argument("--rss-probe", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, default=512, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_probe:
        rss_probe(args.rss_probe, args.batch_size)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    paths = build_all(args)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    for name, step in STEPS.items():
        if name not in args.skip:
            step(args, paths, results)
    ran = [name for name in STEPS if name not in args.skip]
    # a partial run does not replace a whole run's results
    name = "bench_read.json" if not args.skip else f"bench_read_{'_'.join(ran)}.json"
    (args.dir / name).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
