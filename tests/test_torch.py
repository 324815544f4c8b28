"""ooc.torch: batches for DataLoader workers and DDP ranks, every row once an epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ooc
from tests.store_suite import sparse_rows

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import ooc.torch as ooc_torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 1001


def make(path: Path, sparse: bool = False) -> Path:
    x = sparse_rows(N, 20, seed=3) if sparse else np.arange(N * 2, dtype=np.float32
                                                            ).reshape(N, 2)
    with ooc.create(path, "npy") as w:
        w.append("train", x, np.arange(N) % 4, np.arange(N))
    return path


def row_ids_of(x: torch.Tensor) -> list[int]:
    return (x[:, 0] // 2).long().tolist()  # x = [2i, 2i + 1]


def test_iterable_batches_split_across_dataloader_workers(tmp_path):
    split = ooc.open(make(tmp_path / "ds")).train
    data = ooc_torch.IterableBatches(split, 64, shuffle=True, seed=1)
    loader = DataLoader(data, batch_size=None, num_workers=2)
    orders = []
    for epoch in range(2):
        data.set_epoch(epoch)
        seen = []
        for x, y in loader:
            assert x.dtype == torch.float32 and x.is_contiguous()
            x += 0  # writable, no warning
            seen += row_ids_of(x)
            assert (y == torch.tensor(row_ids_of(x)) % 4).all()
        assert sorted(seen) == list(range(N))  # every row once
        orders.append(seen)
    assert orders[0] != orders[1]  # a new shuffle each epoch
    with pytest.raises(ValueError, match="seed"):
        ooc_torch.IterableBatches(split, 64, shuffle=True)


def test_map_batches_with_a_sampler(tmp_path):
    split = ooc.open(make(tmp_path / "ds")).train
    data = ooc_torch.MapBatches(split, 100, shuffle=True, seed=2)
    assert len(data) == 11
    loader = DataLoader(data, batch_size=None, shuffle=True, num_workers=2)
    seen = [i for x, _ in loader for i in row_ids_of(x)]
    assert sorted(seen) == list(range(N))
    with pytest.raises(IndexError):
        data[11]


def test_sparse_batches_as_csr_tensors_or_dense(tmp_path):
    path = make(tmp_path / "ds", sparse=True)
    split = ooc.open(path).train
    ref = split.x[0:128].toarray()
    x, _ = ooc_torch.MapBatches(split, 128, sparse="csr")[0]
    assert x.layout == torch.sparse_csr and x.shape == (128, 20)
    np.testing.assert_array_equal(x.to_dense().numpy(), ref)
    x, _ = ooc_torch.MapBatches(split, 128)[0]
    assert x.layout == torch.strided
    np.testing.assert_array_equal(x.numpy(), ref)
    with pytest.raises(ValueError, match="'dense' or 'csr'"):
        ooc_torch.MapBatches(split, 128, sparse="tensor")


def test_two_ddp_ranks_read_every_row_once(tmp_path):
    path = make(tmp_path / "ds")
    script = textwrap.dedent(f"""
        import json, sys, torch, torch.distributed as dist, ooc, ooc.torch
        from torch.utils.data import DataLoader
        rank = int(sys.argv[1])
        dist.init_process_group("gloo", init_method="file://{tmp_path}/rendezvous",
                                rank=rank, world_size=2)
        data = ooc.torch.IterableBatches(ooc.open({str(path)!r}).train, 50, shuffle=True,
                                         seed=3, equal=True)
        steps, seen = 0, []
        for x, y in DataLoader(data, batch_size=None, num_workers=2):
            seen += (x[:, 0] // 2).long().tolist()
            steps += 1
        dist.all_reduce(torch.tensor(steps))  # a collective: both ranks get here, none hangs
        print(json.dumps({{"rank": rank, "steps": steps, "seen": seen}}))
        dist.destroy_process_group()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for r in (0, 1)]
    out = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    seen = out[0]["seen"] + out[1]["seen"]
    assert sorted(seen) == list(range(N - 1))  # equal=True: 500 rows a rank, row 1000 out
    assert out[0]["steps"] == out[1]["steps"]


def test_iterable_batches_stop_and_resume_mid_epoch(tmp_path):
    # state_dict / load_state_dict: in one process, and per worker through torchdata's
    # StatefulDataLoader (where installed)
    split = ooc.open(make(tmp_path / "ds")).train
    options = {"shuffle": True, "seed": 2, "shuffle_window": 2}

    def batches(data, n=None):
        return [row_ids_of(x) for x, _ in (data if n is None else
                                           (next(data) for _ in range(n)))]

    data = ooc_torch.IterableBatches(split, 16, **options)
    data.set_epoch(2)
    reference = batches(data)
    it = iter(data)
    first = batches(it, 37)
    state = data.state_dict()
    assert (state["epoch"], state["position"]) == (2, 37)
    again = ooc_torch.IterableBatches(split, 16, **options)
    again.load_state_dict(json.loads(json.dumps(state)))
    assert first + batches(again) == reference
    assert batches(again) == reference  # then whole epochs again
    it = iter(again)
    batches(it, 10)  # an iteration left after 10 batches: the next one is whole
    assert batches(again) == reference
    with pytest.raises(ValueError, match="another order"):
        ooc_torch.IterableBatches(split, 16, shuffle=True, seed=3).load_state_dict(state)

    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    data = ooc_torch.IterableBatches(split, 16, **options)
    loader = stateful.StatefulDataLoader(data, batch_size=None, num_workers=2)
    whole = batches(iter(loader))
    it = iter(loader)
    head = batches(it, 21)
    saved = loader.state_dict()
    # the workers' places are ooc's states (not torchdata fast-forwarding a plain dataset)
    states = [w["dataset_state"] for w in saved["_snapshot"]["_worker_snapshots"].values()]
    assert sorted(st["position"] for st in states) == [10, 11]
    resumed = stateful.StatefulDataLoader(ooc_torch.IterableBatches(split, 16, **options),
                                          batch_size=None, num_workers=2)
    resumed.load_state_dict(saved)
    assert head + batches(iter(resumed)) == whole
