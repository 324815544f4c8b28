"""Two TensorFlow MultiWorkerMirroredStrategy workers on localhost, each reading only its
shard through distribute_datasets_from_function (issue 18 item 2): in a custom loop, and in
tf_keras' fit (Keras 3's fit fails under this strategy, keras-team/keras#20585)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ooc
from tools.bench_data import free_ports

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow  # two TensorFlow processes
REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import json, os, sys
    index, ports, path = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{p}" for p in ports]},
        "task": {"type": "worker", "index": index}})
    import ooc
    from ooc._tensorflow import import_tensorflow
    tf = import_tensorflow()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    split = ooc.open(path).train

    def dataset_fn(ctx):  # the README's pattern: this input pipeline's shard only
        part = split.shard(ctx.input_pipeline_id, ctx.num_input_pipelines, equal=True)
        return part.to_tf_dataset(ctx.get_per_replica_batch_size(64), shuffle=True, seed=1)

    seen, steps = [], 0
    dist = strategy.distribute_datasets_from_function(dataset_fn)
    if sys.argv[4] == "loop":
        for x, _ in dist:
            for local in strategy.experimental_local_results(x):
                seen += [int(v) for v in local.numpy()[:, 0]]
            steps += 1
    else:  # Keras 2's fit, recording the rows each step trains on
        import tf_keras

        def record(ids):
            global steps
            seen.extend(int(v) for v in ids.numpy())
            steps += 1
            return 0

        class Recording(tf_keras.Sequential):
            def train_step(self, data):
                tf.py_function(record, [tf.cast(data[0][:, 0], tf.int64)], tf.int32)
                return super().train_step(data)

        with strategy.scope():
            model = Recording([tf_keras.layers.Dense(1)])
            model.compile("sgd", "mse")
        model.fit(dist, epochs=1, steps_per_epoch=16, verbose=0)
    print(json.dumps({"steps": steps, "seen": seen}))
""")




@pytest.mark.parametrize("feed", ["loop", "tf_keras_fit"])
def test_each_worker_reads_its_shard_once(tmp_path, feed):
    x = np.arange(1001, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    with ooc.create(tmp_path / "ds", "npy") as w:
        w.append("train", x, np.arange(1001) % 2)
    ports = json.dumps(free_ports(2))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), ports, str(tmp_path / "ds"),
                               feed], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    # 500 rows each, in batches of 32: the global 64 split between the two replicas
    assert results[0]["steps"] == results[1]["steps"] == 16
    seen = results[0]["seen"] + results[1]["seen"]
    assert sorted(seen) == list(range(1000))  # every row once; equal=True leaves row 1000
