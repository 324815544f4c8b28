"""``ooc preprocess --scheduler``: the same jobs, run as tasks on a Dask cluster.

The passes, their jobs and their order are those of the local process pool
(:class:`~ooc.text.jobs.WorkerPool`); only where a job runs changes, so the
dataset is the same.  Each job is one Dask task.  A worker lost mid-task has its tasks run
again on another (Dask's ``allowed-failures``, 3 by default): every job writes
its files under names of its own and renames them into place
(:func:`ooc.store._disk.save_npy`), so a job run twice, even at once, leaves
one whole output.  Large results come back through spool files, as from the
local pool: through Dask's transport they cost the client more CPU.

Jobs read and write the work directory, so it must be a path every worker
reaches: with ``local`` this machine's disk, on a cluster a shared filesystem.
Dask is imported only here (``pip install 'ooc[dask]'``).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import OocError
from .jobs import spooling_job

LOCAL = "local"
CONNECT_TIMEOUT_S = 30
_KEYS = itertools.count()


class DaskPool:
    """Starts jobs as tasks of a Dask client (and owns a ``LocalCluster`` it made); large
    results come back through files in ``spool`` as from a :class:`WorkerPool`."""

    def __init__(self, client: Any, spool: Path, cluster: Any = None,
                 environ: dict[str, str | None] | None = None) -> None:
        self.client, self.spool, self.cluster = client, spool, cluster
        self._environ = environ or {}  # what to set os.environ's variables back to
        self._started: list[Any] = []

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> _Task:
        """Start ``fn(*args)`` as a task; a handle whose ``get()`` is its result."""
        # a name per job makes the dashboard readable; pure=False: never merged with another
        future = self.client.submit(_run, _Args((self.spool, fn, *args)),
                                    key=f"{fn.__name__}-{next(_KEYS)}", pure=False)
        self._started = [f for f in self._started if not f.done()]
        self._started.append(future)
        return _Task(future)

    def close(self) -> None:
        """Nothing to wait for: every task's result was taken."""

    def __enter__(self) -> DaskPool:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._started:
                self.client.cancel(self._started)
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
            _restore(self._environ)


class _Args:
    """A job's arguments, opaque to Dask: it looks for futures inside lists, tuples and
    dicts element by element, which cost the client 5 ms a chunk of 4,096 texts."""

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __getstate__(self) -> tuple[Any, ...]:
        return self.args

    def __setstate__(self, args: tuple[Any, ...]) -> None:
        self.args = args


def _run(args: _Args) -> Any:
    return spooling_job(*args.args)


class _Task:
    def __init__(self, future: Any) -> None:
        self.future = future

    def get(self) -> Any:
        return self.future.result()


def connect(scheduler: str, workers: int, spool: Path) -> DaskPool:
    """A pool on the scheduler at ``scheduler`` (``tcp://host:8786``), or on a new
    ``LocalCluster`` of ``workers`` single-threaded processes for ``local``."""
    try:
        from distributed import Client
    except ImportError:
        raise OocError("--scheduler needs Dask, an optional extra: pip install "
                       "'ooc[dask]' (or pip install dask distributed).") from None
    if scheduler == LOCAL:
        return _local_cluster(workers, spool)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise OocError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there "
                       f"({exc}). Give the address 'dask scheduler' printed "
                       "(tcp://HOST:8786), or 'local' for a cluster on this "
                       "machine.") from None
    return DaskPool(client, spool)


def _local_cluster(workers: int, spool: Path) -> DaskPool:
    import dask
    from distributed import Client, LocalCluster

    # nannies set their workers' variables in this process' os.environ and leave them
    # (OMP_NUM_THREADS=1, PYTHONHASHSEED, ...): set back when the pool closes
    names = {*dask.config.get("distributed.nanny.pre-spawn-environ"), "PYTHONHASHSEED",
             "__DASK_PARENT_PID"}
    environ = {name: os.environ.get(name) for name in names}
    # MALLOC_TRIM_THRESHOLD_=65536, which nannies set, made ooc's jobs a quarter slower
    # (glibc trims the heap on most frees): glibc's adaptive threshold instead, as without
    # Dask; and no sampling profiler every 10 ms in each worker
    settings = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                "distributed.worker.profile.enabled": False}
    cluster = None
    try:
        with dask.config.set(settings):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        return DaskPool(Client(cluster), spool, cluster, environ)
    except BaseException:
        if cluster is not None:
            cluster.close()
        _restore(environ)
        raise


def _restore(environ: dict[str, str | None]) -> None:
    for name, value in environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
