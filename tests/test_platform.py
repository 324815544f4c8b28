"""Without each platform trick, ``import ooc`` and a round trip still work, with the same data.

Each case takes one trick away in a fresh interpreter, before ``import ooc``
(as a platform without it would), checks that ooc noticed, then writes and
reads both backends and prints a digest of everything read.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import ooc
import ooc.store

REPO = Path(__file__).resolve().parents[1]
HDF5 = h5py.version.hdf5_version_tuple[:3]

ROUND_TRIP = """
import hashlib, sys
import numpy as np, scipy.sparse
import ooc
from ooc import _platform
from ooc._report import human_peak, peak_rss_bytes

assert {check}, "ooc did not notice the missing trick"
digest = hashlib.sha256()
rng = np.random.default_rng(0)
x = rng.random((6000, 1000)).astype(np.float32)  # 24 MB: views pass a release or two
sparse = scipy.sparse.random(900, 300, density=0.05, format="csr", dtype=np.float32,
                             random_state=1)
for fmt, name in (("hdf5", "d.h5"), ("npy", "d")):
    path = sys.argv[1] + "/" + name
    with ooc.create(path, fmt) as w:
        for a in range(0, 6000, 1000):
            w.append("train", x[a:a + 1000], np.arange(a, a + 1000) % 3)
        w.append("val", sparse, np.arange(900) % 2)
    with ooc.open(path) as ds:
        got = [ds.train.x[:], ds.train.y[:], ds.val.x[:].toarray()]
        got += [b for batch in ds.train.iter_batches(500) for b in batch]  # views
        got += [b for batch in ds.val.iter_batches(100) for b in batch]
        assert (ds.train.x[:] == x).all() and ds.verify() is None
    for array in got:
        digest.update(np.ascontiguousarray(array).tobytes())
human_peak(peak_rss_bytes())
print(digest.hexdigest())
"""

# what each case takes away, and how ooc tells that it noticed
WITHOUT = {
    # random registers its own hook where fork exists
    "fork hook": ("import os, random; del os.register_at_fork", "not _platform.FORK_HOOK"),
    "resource": ("import sys; sys.modules['resource'] = None", "_platform.resource is None"),
    "fcntl": ("import sys; sys.modules['fcntl'] = None", "_platform.fcntl is None"),
    "preadv": ("import os; del os.preadv", "not _platform.PREADV"),
    "madvise": ("import mmap; del mmap.MADV_DONTNEED", "not _platform.MADVISE"),
    "dir_fd": ("""
        import os
        _open = os.open
        def _no_dir_fd(path, flags, mode=0o777, *, dir_fd=None):
            if dir_fd is not None:
                raise NotImplementedError("dir_fd unavailable on this platform")
            return _open(path, flags, mode)
        os.open = _no_dir_fd
        os.supports_dir_fd = set()
        del os.O_DIRECTORY
        """, "not _platform.DIR_FD"),
    "HDF5 1.12.2": ("import h5py; h5py.version.hdf5_version_tuple = (1, 12, 2)",
                    "not _platform.chunk_iter()"),
    "glibc": ("import ctypes; ctypes.CDLL = None", "_platform.glibc('mallopt') is None"),
}


def round_trip(tmp_path: Path, setup: str = "", check: str = "True") -> str:
    script = textwrap.dedent(setup) + ROUND_TRIP.format(check=check)
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    return round_trip(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("missing", list(WITHOUT))
def test_each_trick_has_a_fallback_with_the_same_data(tmp_path, reference, missing):
    setup, check = WITHOUT[missing]
    assert round_trip(tmp_path, setup, check) == reference


def test_views_release_the_map_by_the_same_count_on_64k_page_kernels(tmp_path):
    # The release grain must not grow with the page size: with 64 KiB pages a
    # page-size-derived one (512 MiB) made every view drop the whole map.
    script = textwrap.dedent("""
        import mmap, sys
        import numpy as np
        mmap.PAGESIZE = 65536
        releases = []
        class Counting(mmap.mmap):
            def madvise(self, *args):
                releases.append(args)
                return super().madvise(*args)
        mmap.mmap = Counting
        import ooc
        from ooc import _platform
        if not _platform.MADVISE:
            print("no madvise")
            raise SystemExit
        x = np.zeros((4096, 256), np.float32)  # 4 MiB
        with ooc.create(sys.argv[1] + "/d", "npy") as w:
            w.append("train", x, np.zeros(4096, int))
        with ooc.open(sys.argv[1] + "/d", verify="never") as ds:
            views = [ds.train.x.view(a, a + 64) for a in range(0, 4096, 64)]
        print(len(releases), len(views))
        """)
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    if run.stdout.strip() == "no madvise":
        pytest.skip("views are copies here")
    releases, views = map(int, run.stdout.split())
    # 64 views of 64 KiB, each counted as the 2 MiB it may map: one release per 16 MiB
    assert views == 64 and releases <= 10


def test_without_posix_files_the_stores_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(ooc.store, "POSIX_FILES", False)
    with pytest.raises(ooc.UnsupportedPlatformError, match="Linux and macOS"):
        ooc.create(tmp_path / "d.h5", "hdf5")
    with pytest.raises(ooc.UnsupportedPlatformError, match="WSL"):
        ooc.store.writer_class("npy")


@pytest.mark.skipif(HDF5 < (1, 12, 3), reason="this HDF5 cannot iterate chunks")
def test_chunk_offsets_are_the_same_looked_up_one_by_one(tmp_path, monkeypatch):
    # HDF5 before 1.12.3 has no chunk iteration: per-chunk look-ups give the same
    # offsets, and with neither the reads go through h5py, with the same rows
    from ooc.store import hdf5

    x = np.random.default_rng(2).random((5000, 30)).astype(np.float32)
    path = tmp_path / "d.h5"
    with ooc.create(path, "hdf5") as w:
        w.append("train", x, np.zeros(5000, int))
    with h5py.File(path, "r") as f:
        ds = f["train/x"]
        found = {}
        for way in ("iter", "info", "neither"):
            monkeypatch.setattr(hdf5, "chunk_iter", lambda way=way: way == "iter")
            monkeypatch.setattr(hdf5, "chunk_info", lambda way=way: way == "info")
            found[way] = hdf5._chunk_offsets(ds, 30 * 4)
    assert found["iter"] is not None and (found["iter"] >= 0).all()
    np.testing.assert_array_equal(found["info"], found["iter"])
    assert found["neither"] is None
    with ooc.open(path) as ds:
        np.testing.assert_array_equal(ds.train.x[1234:4321], x[1234:4321])


def test_a_shuffled_write_spills_more_than_once_without_flock(tmp_path, monkeypatch):
    # without flock the spill's lock is None, which must not read as "no spill yet"
    monkeypatch.setattr(ooc.writer, "hold_lock", lambda path: None)
    x = np.arange((12 << 20) // 8, dtype=np.int64).reshape(-1, 64)  # 12 MiB: three spills
    with ooc.create(tmp_path / "d.h5", shuffle=True, seed=1, memory_budget=16 << 20) as w:
        for a in range(0, len(x), 4096):
            w.append("train", x[a:a + 4096], np.zeros(len(x[a:a + 4096]), int))
    with ooc.open(tmp_path / "d.h5") as ds:
        got = ds.train.x[:]
    np.testing.assert_array_equal(got[np.argsort(got[:, 0])], x)


HEAP_KEPT = """
import numpy as np, os, sys
from ooc._report import KEEP_FREE, _free_heap, release_memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def freed(total):  # that many bytes of heap freed between live blocks (not trimmable by free)
    blocks = [np.ones(64 << 10 >> 3) for _ in range(2 * total // (64 << 10))]
    return blocks[::2]

keep = freed(KEEP_FREE // 2)
before = rss()
release_memory()
kept = before - rss()
more = freed(3 * KEEP_FREE)
before = rss()
release_memory()
print(kept >> 20, (before - rss()) >> 20, _free_heap() > KEEP_FREE)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_freed_heap_is_kept_up_to_a_bound_then_handed_back():
    from ooc._platform import glibc

    if glibc("mallinfo2") is None:
        pytest.skip("no mallinfo2 (glibc < 2.33): every release trims")
    out = subprocess.run([sys.executable, "-c", HEAP_KEPT], capture_output=True, text=True,
                         check=True).stdout.split()
    kept_released, big_released = int(out[0]), int(out[1])
    assert kept_released < 4  # MiB: half the bound, kept for the next job
    assert big_released > 100  # three times the bound: handed back
