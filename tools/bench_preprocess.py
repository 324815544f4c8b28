"""Benchmark ``ooc preprocess`` against the guide's scikit-learn n-gram pipeline.

For a corpus of N documents and one of 8N (made by tools/make_corpus.py),
runs side by side, each in its own process tree:

* ``ooc``: ``python -m ooc preprocess CORPUS --out ... --workers W`` (reads the
  CSV, vectorizes, writes an HDF5 dataset to disk);
* ``sklearn``: the guide's ``ngram_vectorize``: reads the same CSV into lists,
  ``TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode",
  decode_error="replace")``, ``SelectKBest(f_classif, k=min(20000, d))``,
  float32, fitted on the same training rows that ooc chose.

Reported: wall seconds (median of ``--repeats``), documents/s, and peak
memory of the whole process tree (sum of the resident set sizes of the
process and its children, sampled every 50 ms from /proc).  The sklearn run also
checks parity: same selected features, values within 1e-5.

    python tools/bench_preprocess.py --dir data/bench_pre --docs 100000 --scale 8
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def tree_memory(pid: int) -> tuple[int, int]:
    """Sums of Rss and Pss (bytes) over ``pid`` and all its descendants.

    Pss shares each page among the processes that map it, so pages shared by
    forked workers count once: the fair total for a process tree.
    """
    rss = pss = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/task/{p}/children") as f:
                stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, pss


def measure(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; wall seconds and the peak Rss and Pss of its process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = tree_memory(proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return {"seconds": seconds, "peak_tree_rss": peak_rss, "peak_tree_pss": peak_pss,
            "stdout": out.decode()}


def sklearn_main(corpus: str, train_ids_path: str, out_json: str) -> None:
    """The guide's ngram_vectorize on the training rows ooc chose (runs in a child)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif

    texts, labels = [], []
    with open(corpus, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    train_ids = np.load(train_ids_path)
    is_train = np.zeros(len(texts), dtype=bool)
    is_train[train_ids] = True
    train = [texts[i] for i in np.flatnonzero(is_train)]
    val = [texts[i] for i in np.flatnonzero(~is_train)]
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode",
                                 decode_error="replace", dtype=np.float64)
    x_train = vectorizer.fit_transform(train)
    x_val = vectorizer.transform(val)
    selector = SelectKBest(f_classif, k=min(20000, x_train.shape[1]))
    selector.fit(x_train, y[is_train])
    x_train = selector.transform(x_train).astype("float32")
    x_val = selector.transform(x_val).astype("float32")
    names = vectorizer.get_feature_names_out()[selector.get_support()].tolist()
    sample = np.flatnonzero(is_train)[:500]
    np.save(out_json + ".sample.npy", x_train[:500].toarray())
    Path(out_json).write_text(json.dumps({"features": names, "sample_ids": sample.tolist(),
                                          "n_val": x_val.shape[0]}))


def check_parity(dataset: Path, result_json: Path) -> str:
    """Compare ooc's dataset with the sklearn result: features and 500 training rows."""
    import ooc

    ref = json.loads(result_json.read_text())
    with ooc.open(dataset) as ds:
        if ds.feature_names != ref["features"]:
            n = len(set(ds.feature_names) ^ set(ref["features"]))
            return f"features differ ({n} not shared)"
        row_ids = ds.train.row_ids[:]
        where = {int(r): i for i, r in enumerate(row_ids)}
        ref_rows = np.load(str(result_json) + ".sample.npy")
        worst = 0.0
        for k, rid in enumerate(ref["sample_ids"]):
            i = where[rid]
            worst = max(worst, float(np.abs(ds.train.x[i:i + 1].toarray()[0] - ref_rows[k]).max()))
    return f"same {len(ref['features'])} features, max |diff| {worst:.1e}"


def ensure_corpus(directory: Path, docs: int, words: int) -> Path:
    """Make the corpus once (tools/make_corpus.py)."""
    path = directory / f"corpus_{docs}.csv"
    if not path.exists():
        subprocess.run([sys.executable, "tools/make_corpus.py", str(path), "--docs", str(docs),
                        "--words-per-doc", str(words)], check=True, cwd=ROOT)
    return path


def run_ooc(corpus: Path, out: Path, workers: int) -> dict[str, float]:
    """One ``ooc preprocess`` run."""
    return measure([sys.executable, "-m", "ooc", "preprocess", str(corpus), "--out", str(out),
                    "--overwrite", "--quiet", "--workers", str(workers)])


def run_sklearn(corpus: Path, dataset: Path, result: Path) -> dict[str, float]:
    """One sklearn run, on the training rows of ``dataset``."""
    import ooc

    ids_path = result.with_suffix(".train_ids.npy")
    with ooc.open(dataset) as ds:
        np.save(ids_path, ds.train.row_ids[:])
    return measure([sys.executable, __file__, "--sklearn-child", str(corpus), str(ids_path),
                    str(result)])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=ROOT / "data" / "bench_pre")
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--scale", type=int, default=8)
    p.add_argument("--words", type=int, default=120)
    p.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1],
                   help="ooc worker counts, each run side by side with the others")
    p.add_argument("--repeats", type=int, default=3, help="runs at N (medians)")
    p.add_argument("--repeats-large", type=int, default=1, help="runs at scale x N")
    p.add_argument("--skip-sklearn-large", action="store_true")
    p.add_argument("--sklearn-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sklearn_child:
        sklearn_main(*args.sklearn_child)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for docs, repeats in ((args.docs, args.repeats), (args.docs * args.scale,
                                                      args.repeats_large)):
        if not repeats:
            continue
        corpus = ensure_corpus(args.dir, docs, args.words)
        dataset = args.dir / f"ooc_{docs}.h5"
        result = args.dir / f"sklearn_{docs}.json"
        names = [f"ooc -w{w}" for w in args.workers]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*names, "sklearn"]}
        for _ in range(repeats):  # interleaved, so all see the same machine load
            for name, workers in zip(names, args.workers, strict=True):
                runs[name].append(run_ooc(corpus, dataset, workers))
            if docs == args.docs or not args.skip_sklearn_large:
                runs["sklearn"].append(run_sklearn(corpus, dataset, result))
        parity = check_parity(dataset, result) if runs["sklearn"] else "not run"
        for name, rs in runs.items():
            if rs:
                sec = statistics.median(r["seconds"] for r in rs)
                rss = max(r["peak_tree_rss"] for r in rs)
                pss = max(r["peak_tree_pss"] for r in rs)
                rows.append((name, docs, len(rs), sec, docs / sec, rss, pss, parity))
        print_table(rows)
    (args.dir / "bench_preprocess.json").write_text(json.dumps(rows))
    return 0


def print_table(rows: list[tuple]) -> None:
    """The results as a Markdown table, with ratios at each size."""
    print(f"\n| pipeline | documents | runs | median s | documents/s | peak RSS (tree) "
          f"| peak PSS (tree) | parity |   ({os.cpu_count()} cores; ooc -wN: --workers N)")
    print("|---|---|---|---|---|---|---|---|")
    for name, docs, n, sec, rate, rss, pss, parity in rows:
        print(f"| {name} | {docs:,} | {n} | {sec:.1f} | {rate:,.0f} | {rss / 2**20:,.0f} MiB "
              f"| {pss / 2**20:,.0f} MiB | {parity if name != 'sklearn' else ''} |")
    by = {(r[0], r[1]): r for r in rows}
    oocs = sorted({r[0] for r in rows if r[0] != "sklearn"}, key=lambda n: int(n[6:]))
    for docs in sorted({r[1] for r in rows}):
        s = by.get(("sklearn", docs))
        for name in oocs:
            o = by.get((name, docs))
            if o and s:
                print(f"at {docs:,}: {name} / sklearn documents/s {o[4] / s[4]:.2f}x, "
                      f"peak RSS {o[5] / s[5]:.2f}x, peak PSS {o[6] / s[6]:.2f}x")
        if len(oocs) > 1 and all((n, docs) in by for n in oocs):
            first = by[(oocs[0], docs)]
            for name in oocs[1:]:
                print(f"at {docs:,}: {name} / {oocs[0]} documents/s "
                      f"{by[(name, docs)][4] / first[4]:.2f}x")
    for name in oocs:
        sizes = sorted({r[1] for r in rows if r[0] == name})
        if len(sizes) == 2:
            a, b = by[(name, sizes[0])], by[(name, sizes[1])]
            print(f"{name} peak at {sizes[1]:,} vs {sizes[0]:,}: RSS {b[5] / a[5] - 1:+.1%}, "
                  f"PSS {b[6] / a[6] - 1:+.1%}")


if __name__ == "__main__":
    sys.exit(main())
