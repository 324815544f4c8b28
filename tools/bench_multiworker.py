"""Keras workers under ``MultiWorkerMirroredStrategy``, each reading its shard of one ooc split.

Training steps per second of each worker when 2 train together (on
localhost, gradients all-reduced every step) against one worker alone,
the same per-worker batch and model, fed by ooc or by the same rows held
in memory (``tf.data`` slices), in rounds that rotate the four set-ups
(medians of ``--repeats`` rounds).  Each worker reads only its rows:
``split.shard(ctx.input_pipeline_id, ctx.num_input_pipelines,
equal=True).to_tf_dataset(...)`` through ``distribute_datasets_from_function``
(the README's pattern).  The loop is a custom one (``strategy.run``): Keras
3's ``fit`` fails under this strategy (keras-team/keras#20585).  Every
worker's ops get ``--threads`` TensorFlow threads (default 1, so that 2
workers on a 2-core machine do not compete for cores; one more for the ops
between them, without which collective ops hang).  Usage::

    python tools/bench_multiworker.py --dir data/bench_mw --rows 200000 --cols 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench_data import free_ports
from bench_data import make_dense as make  # tools/ is the script's folder

WORKER = r"""
import json, os, sys, time
index, ports, path = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
args = json.loads(sys.argv[4])
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"localhost:{p}" for p in ports]},
    "task": {"type": "worker", "index": index}})
import ooc
from ooc._tensorflow import import_keras, import_tensorflow
tf = import_tensorflow()
tf.config.threading.set_intra_op_parallelism_threads(args["threads"])
tf.config.threading.set_inter_op_parallelism_threads(args["threads"] + 1)  # 1: collectives hang
keras = import_keras()
strategy = tf.distribute.MultiWorkerMirroredStrategy()
split = ooc.open(path).train
batch = args["batch"]  # per worker
global_batch = batch * strategy.num_replicas_in_sync

def dataset_fn(ctx):
    part = split.shard(ctx.input_pipeline_id, ctx.num_input_pipelines, equal=True)
    b = ctx.get_per_replica_batch_size(global_batch)
    if args["feed"] == "memory":  # the shard's rows held in memory, batches sliced
        x, y = part.x[:], part.y[:]
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x) // b, seed=1)
        return ds.batch(b, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)
    return part.to_tf_dataset(b, shuffle=True, seed=1, drop_remainder=True).repeat()

with strategy.scope():  # the guide's MLP
    model = keras.Sequential([
        keras.Input((split.shape[1],)), keras.layers.Dropout(0.2),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(args["classes"], activation="softmax")])
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)

@tf.function
def train_step(iterator):
    def replica(x, y):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(loss_fn(y, model(x, training=True)),
                                              global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return strategy.reduce("SUM", strategy.run(replica, next(iterator)), axis=None)

iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
for _ in range(args["warmup"]):  # tracing, page cache
    train_step(iterator)
start = time.perf_counter()
for _ in range(args["steps"]):
    loss = train_step(iterator)
float(loss)
print(json.dumps({"steps_per_s": args["steps"] / (time.perf_counter() - start)}))
"""






def run_cluster(n: int, path: Path, args: dict) -> list[float]:
    """Steps/s of each of ``n`` workers training together."""
    ports = json.dumps(free_ports(n))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), ports, str(path),
                               json.dumps(args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(n)]
    rates = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=900)
            if p.returncode:
                raise SystemExit(f"worker failed:\n{err[-3000:]}")
            rates.append(json.loads(out.strip().splitlines()[-1])["steps_per_s"])
    finally:
        for p in procs:  # the others would wait for the failed one's all-reduce
            p.kill()
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path("data/bench_mw"))
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--cols", type=int, default=500)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--batch", type=int, default=256, help="rows per step per worker")
    p.add_argument("--steps", type=int, default=300, help="timed steps per worker")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads per worker")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    path = make(a.dir / f"dense_{a.rows}_{a.cols}", a.rows, a.cols, a.classes)
    args = {k: getattr(a, k) for k in ("batch", "steps", "warmup", "threads", "classes")}
    setups = [(feed, n) for feed in ("ooc", "memory") for n in (1, 2)]
    rates: dict[tuple[str, int], list[list[float]]] = {s: [] for s in setups}
    for r in range(a.repeats):
        for feed, n in setups[r % len(setups):] + setups[:r % len(setups)]:
            got = run_cluster(n, path, {**args, "feed": feed})
            rates[feed, n].append(got)
            print(f"round {r + 1}: {feed}, {n} worker(s): "
                  + ", ".join(f"{s:.1f}" for s in got) + " steps/s", flush=True)
    print(f"\nper-worker batch {a.batch}, {a.threads} thread(s) each, medians of {a.repeats}:")
    print("| feed | set-up | steps/s per worker | / one worker alone |\n|---|---|---|---|")
    for feed in ("ooc", "memory"):
        one = statistics.median(r[0] for r in rates[feed, 1])
        print(f"| {feed} | 1 worker | {one:.1f} | 1.00x |")
        for i in range(2):
            each = statistics.median(r[i] for r in rates[feed, 2])
            print(f"| {feed} | 2 workers: worker {i} | {each:.1f} | {each / one:.2f}x |")


if __name__ == "__main__":
    main()
