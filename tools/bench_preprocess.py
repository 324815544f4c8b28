"""Benchmark ``ooc preprocess`` against the guide's in-memory vectorize pipelines.

For a corpus of N documents and one of 8N (made by tools/make_corpus.py),
runs side by side, each in its own process tree, for ``--vectorizer ngram``
(the default):

* ``ooc``: ``python -m ooc preprocess CORPUS --out ... --workers W`` (reads the
  CSV, vectorizes, writes an HDF5 dataset to disk);
* ``sklearn``: the guide's ``ngram_vectorize``: reads the same CSV into lists,
  ``TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode",
  decode_error="replace")``, ``SelectKBest(f_classif, k=min(20000, d))``,
  float32, fitted on the same training rows that ooc chose;

and for ``--vectorizer sequence``:

* ``ooc``: the same command with ``--vectorizer sequence --top-k 20000
  --max-length 500``;
* ``tf_keras``: the guide's ``sequence_vectorize``: ``Tokenizer(num_words=20000)``
  fitted on the same training rows, ``texts_to_sequences``, then
  ``pad_sequences(maxlen=min(longest training sequence, 500))`` on the
  training and validation rows.

Reported: wall seconds (median of ``--repeats``), documents/s, and peak
memory of the whole process tree (sum of the resident set sizes of the
process and its children, sampled every 50 ms from /proc).  The reference
run also checks parity on 500 training and 500 validation rows, compared by
row id: same features (n-grams) or same kept words in the same order
(sequences), and the same values.

    python tools/bench_preprocess.py --dir data/bench_pre --docs 100000 --scale 8
    python tools/bench_preprocess.py --docs 100000 --repeats-large 0 --vectorizer sequence
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOP_K = 20_000
MAX_LENGTH = 500
SAMPLE_ROWS = 500


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


# ------------------------------------------------ the guide's in-memory pipelines
Vectorized = tuple[list[str], Any, Any]
"""(feature names or kept words, training matrix, validation matrix)."""


def sklearn_vectorize(train: list[str], val: list[str], train_labels: list[str]) -> Vectorized:
    """The guide's ngram_vectorize: tf-idf of 1-2-grams, the k best by F score."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif

    y = np.unique(train_labels, return_inverse=True)[1]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode",
                                 decode_error="replace", dtype=np.float64)
    x_train = vectorizer.fit_transform(train)
    x_val = vectorizer.transform(val)
    selector = SelectKBest(f_classif, k=min(TOP_K, x_train.shape[1]))
    selector.fit(x_train, y)
    names = vectorizer.get_feature_names_out()[selector.get_support()].tolist()
    return (names, selector.transform(x_train).astype("float32"),
            selector.transform(x_val).astype("float32"))


def keras_vectorize(train: list[str], val: list[str], train_labels: list[str]) -> Vectorized:
    """The guide's sequence_vectorize: Keras word ids, padded to the longest training row."""
    from tf_keras.preprocessing.sequence import pad_sequences
    from tf_keras.preprocessing.text import Tokenizer

    tokenizer = Tokenizer(num_words=TOP_K)
    tokenizer.fit_on_texts(train)
    seq_train = tokenizer.texts_to_sequences(train)
    seq_val = tokenizer.texts_to_sequences(val)
    maxlen = min(max(len(s) for s in seq_train), MAX_LENGTH)
    # pad_sequences' defaults pad and truncate at the front ("pre"), as the guide and ooc do
    kept = min(TOP_K - 1, len(tokenizer.index_word))
    words = [tokenizer.index_word[i] for i in range(1, kept + 1)]
    return words, pad_sequences(seq_train, maxlen=maxlen), pad_sequences(seq_val, maxlen=maxlen)


@dataclass(frozen=True)
class Pipeline:
    """One vectorizer: ooc's options, the guide's reference and how parity reads ooc."""

    vectorizer: str
    reference: str
    """The reference's name in the table and its result files."""
    ooc_options: tuple[str, ...]
    modules: tuple[str, ...]
    """The reference's imports, timed apart from its work."""
    vectorize: Callable[[list[str], list[str], list[str]], Vectorized]
    unit: str
    """What the parity compares by name: features or words."""
    ooc_names: Callable[[Any], list[str]]

    @property
    def tag(self) -> str:
        """File-name tag: none for the n-gram path, whose file names predate the option."""
        return "" if self.vectorizer == "ngram" else f"_{self.vectorizer}"


PIPELINES = {
    "ngram": Pipeline("ngram", "sklearn", (),
                      ("sklearn.feature_extraction.text", "sklearn.feature_selection"),
                      sklearn_vectorize, "features", lambda ds: ds.feature_names),
    "sequence": Pipeline("sequence", "tf_keras",
                         ("--vectorizer", "sequence", "--top-k", str(TOP_K),
                          "--max-length", str(MAX_LENGTH)),
                         ("tf_keras.preprocessing.text", "tf_keras.preprocessing.sequence"),
                         keras_vectorize, "words", lambda ds: list(ds.vectorizer.words)),
}


def read_corpus(corpus: str) -> tuple[list[str], list[str]]:
    """Texts and labels of the CSV, in memory, as the guide loads them."""
    texts, labels = [], []
    with open(corpus, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels


def reference_main(pipeline: Pipeline, corpus: str, train_ids_path: str, out_json: str) -> None:
    """The guide's pipeline on the training rows ooc chose (runs in a child)."""
    start = time.perf_counter()
    for module in pipeline.modules:
        importlib.import_module(module)
    import_s = time.perf_counter() - start
    texts, labels = read_corpus(corpus)
    is_train = np.zeros(len(texts), dtype=bool)
    is_train[np.load(train_ids_path)] = True
    ids = {"train": np.flatnonzero(is_train), "val": np.flatnonzero(~is_train)}
    names, x_train, x_val = pipeline.vectorize([texts[i] for i in ids["train"]],
                                               [texts[i] for i in ids["val"]],
                                               [labels[i] for i in ids["train"]])
    xs = {"train": x_train, "val": x_val}
    np.savez(out_json + ".samples.npz", **{s: dense(x[:SAMPLE_ROWS]) for s, x in xs.items()})
    Path(out_json).write_text(json.dumps({
        "names": names, "import_s": import_s,
        "shapes": {s: list(x.shape) for s, x in xs.items()},
        "sample_ids": {s: ids[s][:SAMPLE_ROWS].tolist() for s in xs}}))


def dense(x: Any) -> np.ndarray:
    """``x`` as a dense array (sparse matrices are expanded)."""
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)


def check_parity(pipeline: Pipeline, dataset: Path, result_json: Path) -> str:
    """Compare ooc's dataset with the reference: names, shapes and sample rows by row id."""
    import ooc

    ref = json.loads(result_json.read_text())
    ref_rows = np.load(str(result_json) + ".samples.npz")
    with ooc.open(dataset) as ds:
        names = pipeline.ooc_names(ds)
        if names != ref["names"]:
            n = len(set(names) ^ set(ref["names"]))
            return f"{pipeline.unit} differ ({n} not shared, or in another order)"
        worst = 0.0
        for split, ref_ids in ref["sample_ids"].items():
            if list(ds[split].shape) != ref["shapes"][split]:
                return (f"{split} shape differs: ooc {ds[split].shape}, "
                        f"{pipeline.reference} {tuple(ref['shapes'][split])}")
            worst = max(worst, sample_diff(ds[split], ref_ids, ref_rows[split]))
    counts = " + ".join(f"{len(ids)} {s}" for s, ids in ref["sample_ids"].items())
    same = "equal" if worst == 0 else f"max diff {worst:.1e}"
    return f"same {len(names)} {pipeline.unit}, {counts} rows {same}"


def sample_diff(split: Any, ref_ids: list[int], ref_rows: np.ndarray) -> float:
    """Largest absolute difference between ooc's rows and the reference's, by row id."""
    where = {int(r): i for i, r in enumerate(split.row_ids[:])}
    worst = 0.0
    for k, rid in enumerate(ref_ids):
        i = where[rid]
        row = dense(split.x[i:i + 1])[0].astype(np.float64)
        worst = max(worst, float(np.abs(row - ref_rows[k]).max(initial=0.0)))
    return worst


# ------------------------------------------------------------------- the runs
def ensure_corpus(directory: Path, docs: int, words: int) -> Path:
    """Make the corpus once (tools/make_corpus.py)."""
    path = directory / f"corpus_{docs}.csv"
    if not path.exists():
        subprocess.run([sys.executable, "tools/make_corpus.py", str(path), "--docs", str(docs),
                        "--words-per-doc", str(words)], check=True, cwd=ROOT)
    return path


def run_ooc(pipeline: Pipeline, corpus: Path, out: Path, workers: int) -> dict[str, float]:
    """One ``ooc preprocess`` run."""
    return measure([sys.executable, "-m", "ooc", "preprocess", str(corpus), "--out", str(out),
                    "--overwrite", "--quiet", "--workers", str(workers),
                    *pipeline.ooc_options])


def run_reference(pipeline: Pipeline, corpus: Path, dataset: Path,
                  result: Path) -> dict[str, float]:
    """One reference run, on the training rows of ``dataset``; adds its import seconds."""
    import ooc

    ids_path = result.with_suffix(".train_ids.npy")
    with ooc.open(dataset) as ds:
        np.save(ids_path, ds.train.row_ids[:])
    run = measure([sys.executable, __file__, "--reference-child", str(corpus), str(ids_path),
                   str(result), "--vectorizer", pipeline.vectorizer])
    return {**run, "import_s": json.loads(result.read_text())["import_s"]}


def bench_size(args: argparse.Namespace, pipeline: Pipeline, docs: int, repeats: int,
               with_reference: bool) -> list[dict[str, Any]]:
    """Interleaved runs at one corpus size; one result row per side."""
    corpus = ensure_corpus(args.dir, docs, args.words)
    dataset = args.dir / f"ooc{pipeline.tag}_{docs}.h5"
    result = args.dir / f"{pipeline.reference}_{docs}.json"
    names = [f"ooc -w{w}" for w in args.workers]
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in [*names, pipeline.reference]}
    for _ in range(repeats):  # interleaved, so all see the same machine load
        for name, workers in zip(names, args.workers, strict=True):
            runs[name].append(run_ooc(pipeline, corpus, dataset, workers))
        if with_reference:
            runs[pipeline.reference].append(run_reference(pipeline, corpus, dataset, result))
    parity = check_parity(pipeline, dataset, result) if with_reference else "not run"
    rows = []
    for name, rs in runs.items():
        if rs:
            sec = statistics.median(r["seconds"] for r in rs)
            row = {"pipeline": name, "vectorizer": pipeline.vectorizer, "documents": docs,
                   "runs": len(rs), "median_s": sec, "documents_per_s": docs / sec,
                   "peak_tree_rss": max(r["peak_tree_rss"] for r in rs),
                   "peak_tree_pss": max(r["peak_tree_pss"] for r in rs), "parity": parity}
            if name == pipeline.reference:
                row.update(parity="", import_s=statistics.median(r["import_s"] for r in rs))
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=ROOT / "data" / "bench_pre")
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--scale", type=int, default=8)
    p.add_argument("--words", type=int, default=120)
    p.add_argument("--vectorizer", choices=sorted(PIPELINES), default="ngram",
                   help="ngram: against scikit-learn; sequence: against tf_keras "
                        "(default: ngram)")
    p.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1],
                   help="ooc worker counts, each run side by side with the others")
    p.add_argument("--repeats", type=int, default=3, help="runs at N (medians)")
    p.add_argument("--repeats-large", type=int, default=1, help="runs at scale x N")
    p.add_argument("--skip-sklearn-large", "--skip-reference-large", action="store_true",
                   dest="skip_reference_large")
    # the reference side of one run: CORPUS TRAIN_IDS.npy OUT.json (with --vectorizer)
    p.add_argument("--reference-child", "--sklearn-child", nargs=3, dest="reference_child",
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    pipeline = PIPELINES[args.vectorizer]
    if args.reference_child:
        reference_main(pipeline, *args.reference_child)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for docs, repeats in ((args.docs, args.repeats), (args.docs * args.scale,
                                                      args.repeats_large)):
        if repeats:
            with_reference = docs == args.docs or not args.skip_reference_large
            rows += bench_size(args, pipeline, docs, repeats, with_reference)
            print_table(rows, pipeline)
    (args.dir / f"bench_preprocess{pipeline.tag}.json").write_text(
        json.dumps({"vectorizer": pipeline.vectorizer, "reference": pipeline.reference,
                    "cores": os.cpu_count(), "rows": rows}, indent=1))
    return 0


def print_table(rows: list[dict[str, Any]], pipeline: Pipeline) -> None:
    """The results as a Markdown table, with ratios at each size."""
    ref = pipeline.reference
    print(f"\n--vectorizer {pipeline.vectorizer}: ooc against {ref} "
          f"({os.cpu_count()} cores; ooc -wN: --workers N)")
    print("| pipeline | documents | runs | median s | documents/s | peak RSS (tree) "
          "| peak PSS (tree) | parity |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pipeline']} | {r['documents']:,} | {r['runs']} | {r['median_s']:.1f} "
              f"| {r['documents_per_s']:,.0f} | {r['peak_tree_rss'] / 2**20:,.0f} MiB "
              f"| {r['peak_tree_pss'] / 2**20:,.0f} MiB | {r['parity']} |")
    by = {(r["pipeline"], r["documents"]): r for r in rows}
    oocs = sorted({n for n, _ in by if n != ref}, key=lambda n: int(n[6:]))
    for docs in sorted({d for _, d in by}):
        s = by.get((ref, docs))
        if s:
            print(f"at {docs:,}: {ref} spent {s['import_s']:.1f} s of its "
                  f"{s['median_s']:.1f} s importing {', '.join(pipeline.modules)}")
        for name in oocs:
            o = by.get((name, docs))
            if o and s:
                print(f"at {docs:,}: {name} / {ref} documents/s "
                      f"{o['documents_per_s'] / s['documents_per_s']:.2f}x, peak RSS "
                      f"{o['peak_tree_rss'] / s['peak_tree_rss']:.2f}x, peak PSS "
                      f"{o['peak_tree_pss'] / s['peak_tree_pss']:.2f}x")
        if len(oocs) > 1 and all((n, docs) in by for n in oocs):
            first = by[(oocs[0], docs)]
            for name in oocs[1:]:
                print(f"at {docs:,}: {name} / {oocs[0]} documents/s "
                      f"{by[(name, docs)]['documents_per_s'] / first['documents_per_s']:.2f}x")
    for name in oocs:
        sizes = sorted(d for n, d in by if n == name)
        if len(sizes) == 2:
            a, b = by[(name, sizes[0])], by[(name, sizes[1])]
            print(f"{name} peak at {sizes[1]:,} vs {sizes[0]:,}: RSS "
                  f"{b['peak_tree_rss'] / a['peak_tree_rss'] - 1:+.1%}, PSS "
                  f"{b['peak_tree_pss'] / a['peak_tree_pss'] - 1:+.1%}")


if __name__ == "__main__":
    sys.exit(main())
