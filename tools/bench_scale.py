"""Peak memory of ``ooc preprocess`` and of scikit-learn as the corpus grows, under caps.

For each size N (prefixes of one corpus made by ``tools/make_corpus.py``)::

    ooc preprocess PREFIX --out ...                       under --cap (default 2G)
    the guide's scikit-learn ngram_vectorize (tools/bench_preprocess.py --sklearn-child)
                                                          under --sklearn-cap (default 16G)

each in a memory cgroup of its own (``tools/run_capped.py``), recording wall
time, the peak of resident memory (anonymous + mapped files, so the page
cache a job streams through is not counted), the cgroup's own peak, and
whether the kernel OOM-killed it.  ooc's datasets stay in ``--work``
(``ooc_N.h5``) for the training runs.  ``--breakpoints`` then runs scikit-learn
alone under ``--cap`` at smaller sizes to find where it stops fitting.

Writes ``--out`` (JSON), prints a Markdown table, and with ``--plot`` draws
peak memory against documents (matplotlib)::

    python tools/bench_scale.py --corpus data/scale/amazon_3m.csv \\
        --sizes 375000,750000,1500000,3000000 --breakpoints 50000,100000,150000,200000,300000 \\
        --plot docs/scale_memory.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import run_capped  # noqa: E402

MiB = 2**20


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def prefix_corpus(corpus: Path, docs: int, directory: Path) -> tuple[Path, int]:
    """The first ``docs`` rows of ``corpus`` and their number (the corpus itself if no more)."""
    path = directory / f"{corpus.stem}_{docs}{corpus.suffix}"
    if path.exists():
        return path, docs
    tmp = path.with_name(path.name + ".tmp")
    rows = -1  # the header
    with open(corpus, newline="", encoding="utf-8") as src, \
            open(tmp, "w", newline="", encoding="utf-8") as dst:
        writer = csv.writer(dst)
        for row in csv.reader(src):
            if rows == docs:
                break
            writer.writerow(row)
            rows += 1
        else:
            tmp.unlink()
            return corpus, rows
    tmp.rename(path)
    return path, docs


def capped(command: list[str], limit: int) -> dict[str, Any]:
    """Run ``command`` under ``limit`` bytes and return the run_capped report."""
    result = run_capped.run_capped(command, limit)
    print(run_capped.summary_line(result), file=sys.stderr, flush=True)
    return asdict(result)


def run_ooc(corpus: Path, out: Path, limit: int) -> dict[str, Any]:
    """``ooc preprocess`` with the n-gram defaults, capped."""
    report = capped([sys.executable, "-m", "ooc", "preprocess", str(corpus), "--out", str(out),
                     "--overwrite", "--quiet"], limit)
    report["bytes_on_disk"] = out.stat().st_size if out.exists() else None
    return report


def run_sklearn(corpus: Path, dataset: Path | None, work: Path, limit: int) -> dict[str, Any]:
    """The guide's scikit-learn pipeline, capped, on ooc's training rows (else 80%)."""
    ids = work / f"{corpus.stem}.train_ids.npy"
    if dataset is not None and dataset.exists():
        import ooc

        with ooc.open(dataset) as ds:
            np.save(ids, ds.train.row_ids[:])
    else:
        with open(corpus, newline="", encoding="utf-8") as f:
            n = sum(1 for _ in csv.reader(f)) - 1
        np.save(ids, np.flatnonzero(np.random.default_rng(0).random(n) < 0.8))
    return capped([sys.executable, str(TOOLS / "bench_preprocess.py"), "--sklearn-child",
                   str(corpus), str(ids), str(work / f"{corpus.stem}.sklearn.json")], limit)


def mib(report: dict[str, Any], key: str = "peak_resident_bytes") -> str:
    """A report's peak in MiB, or what stopped it."""
    value = report.get(key)
    text = "n/a" if value is None else f"{value / MiB:,.0f} MiB"
    return f"killed at {text}" if report["oom_killed"] else text


def print_table(results: dict[str, Any]) -> None:
    """The scaling runs and the breakpoints as Markdown tables."""
    cap, scap = results["cap"] / 2**30, results["sklearn_cap"] / 2**30
    print(f"\n| documents | ooc s | ooc docs/s | ooc peak resident ({cap:g} GiB cap) "
          f"| ooc on disk | sklearn s | sklearn peak resident ({scap:g} GiB cap) |")
    print("|---|---|---|---|---|---|---|")
    for row in results["sizes"]:
        o, s = row["ooc"], row["sklearn"]
        disk = f"{o['bytes_on_disk'] / MiB:,.0f} MiB" if o.get("bytes_on_disk") else "-"
        rate = row["docs"] / o["wall_seconds"]
        print(f"| {row['docs']:,} | {o['wall_seconds']:.0f} | {rate:,.0f} "
              f"| {mib(o)} | {disk} | {s['wall_seconds']:.0f} | {mib(s)} |")
    if results["breakpoints"]:
        print(f"\nscikit-learn under the {cap:g} GiB cap:\n\n| documents | s | peak resident "
              "| result |\n|---|---|---|---|")
        for row in results["breakpoints"]:
            s = row["sklearn"]
            print(f"| {row['docs']:,} | {s['wall_seconds']:.0f} | {mib(s)} "
                  f"| {'OOM-killed' if s['oom_killed'] else 'fits'} |")


def plot(results: dict[str, Any], path: Path) -> None:
    """Peak resident memory against documents: ooc flat, scikit-learn growing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, colour in (("ooc", "tab:blue"), ("sklearn", "tab:red")):
        runs = results["sizes"] + (results["breakpoints"] if name == "sklearn" else [])
        rows = sorted((r for r in runs if r[name].get("peak_resident_bytes")),
                      key=lambda r: r["docs"])
        xs = [r["docs"] for r in rows]
        ys = [r[name]["peak_resident_bytes"] / 2**30 for r in rows]
        label = "ooc preprocess" if name == "ooc" else "scikit-learn (guide)"
        ax.plot(xs, ys, "o-", color=colour, label=label)
        for x, y, r in zip(xs, ys, rows, strict=True):
            if r[name]["oom_killed"]:
                ax.plot([x], [y], "x", color="black", markersize=12)
                cap = r[name]["limit_bytes"] / 2**30
                right = x > 1e6
                ax.annotate(f"OOM-killed at the {cap:g} GiB cap", (x, y),
                            ha="right" if right else "left", textcoords="offset points",
                            xytext=(-10, 6) if right else (10, -3))
    ax.axhline(results["cap"] / 2**30, color="grey", linestyle="--",
               label=f"{results['cap'] / 2**30:g} GiB cap (ooc)")
    ax.set_xlabel("documents")
    ax.set_ylabel("peak resident memory (GiB)")
    ax.set_title("Peak memory of the n-gram preprocessing vs corpus size")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Run the scaling benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, required=True, help="CSV from tools/make_corpus.py")
    p.add_argument("--sizes", type=_ints, default=[375_000, 750_000, 1_500_000, 3_000_000])
    p.add_argument("--breakpoints", type=_ints, default=[], help="sklearn-only sizes under --cap")
    p.add_argument("--cap", type=run_capped.parse_size, default=2 * 2**30)
    p.add_argument("--sklearn-cap", type=run_capped.parse_size, default=16 * 2**30)
    p.add_argument("--work", type=Path, help="scratch directory (default: next to the corpus)")
    p.add_argument("--out", type=Path, help="JSON results (default: WORK/bench_scale.json)")
    p.add_argument("--plot", type=Path, help="write the PNG plot here")
    p.add_argument("--replot", action="store_true", help="only redraw --plot from --out")
    p.add_argument("--ooc-only", action="store_true",
                   help="re-run ooc only, keeping scikit-learn's results from --out")
    args = p.parse_args(argv)
    work = args.work or args.corpus.parent / "bench_scale"
    work.mkdir(parents=True, exist_ok=True)
    out = args.out or work / "bench_scale.json"
    if args.replot:
        results = json.loads(out.read_text())
    else:
        previous = json.loads(out.read_text()) if args.ooc_only else None
        results = previous or {"corpus": str(args.corpus), "cap": args.cap,
                               "sklearn_cap": args.sklearn_cap, "sizes": [], "breakpoints": []}
        if previous is None:
            results["sizes"] = []
        done: set[int] = set()
        for docs in args.sizes:
            corpus, n = prefix_corpus(args.corpus, docs, work)
            if n in done:
                continue
            done.add(n)
            dataset = work / f"ooc_{n}.h5"
            row = {"docs": n, "ooc": run_ooc(corpus, dataset, args.cap)}
            if previous is None:
                row["sklearn"] = run_sklearn(corpus, dataset, work, args.sklearn_cap)
                results["sizes"].append(row)
            else:
                next(r for r in results["sizes"] if r["docs"] == n)["ooc"] = row["ooc"]
            out.write_text(json.dumps(results, indent=1))
        for docs in args.breakpoints if previous is None else []:
            corpus, n = prefix_corpus(args.corpus, docs, work)
            results["breakpoints"].append(
                {"docs": n, "sklearn": run_sklearn(corpus, None, work, args.cap)})
            out.write_text(json.dumps(results, indent=1))
    print_table(results)
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
