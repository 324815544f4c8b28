"""The ``ooc`` command line: ``main(argv=None)`` with one subcommand each.

Heavy imports (TensorFlow/Keras) happen inside the subcommands that train.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from . import __version__
from ._report import bytes_on_disk, human_bytes
from .errors import OocError, OocWarning
from .text._common import escape


def _cmd_info(args: argparse.Namespace) -> int:
    from .reader import open as open_dataset

    with open_dataset(args.path, verify="never") as ds:
        print(f"dataset   {ds.path} ({human_bytes(bytes_on_disk(ds.path))} on disk, "
              f"format version {ds.manifest['format_version']}, {ds.manifest['created_by']})")
        for name, split in ds.splits.items():
            kind = "sparse csr" if split.is_sparse else "dense"
            print(f"split     {name}: {len(split)} rows x {split.shape[1]} features, {kind}, "
                  f"{split.x.dtype}, {split.nnz} non-zeros")
            counts = split.label_counts
            names = ds.classes or [str(i) for i in range(len(counts))]
            print("          labels: " + ", ".join(
                f"{names[i] if i < len(names) else i}={c}" for i, c in enumerate(counts)))
        n_features = len(ds.feature_names) if ds.feature_names is not None else "none"
        print(f"classes   {ds.classes}")
        print(f"features  {n_features} names stored")
        for key, value in ds.metadata.items():  # e.g. vectorizer and preprocess settings
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v!r}" for k, v in value.items() if k != "classes")
            print(f"{key:<9} {value}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .reader import open as open_dataset

    with open_dataset(args.path, verify="always") as ds:
        ds.verify()
        rows = sum(len(s) for s in ds.splits.values())
    print(f"ok: {args.path}: every checksum of {len(ds.splits)} splits, {rows} rows matches")
    return 0


def parse_size(text: str) -> int:
    """``"1G"``, ``"512M"``, ``"2GiB"``, ``"1000000"`` -> bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = cleaned.rstrip("KMGT"), cleaned[len(cleaned.rstrip("KMGT")):]
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"expected a size like 1G, 512M or 2GiB; got {text!r}") from None


def _column(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from .preprocess import preprocess_text

    options = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    inputs = options.pop("input")
    options["val_inputs"] = options.pop("val") or ()
    options["text_columns"] = options["text_columns"] or ()
    options["header"] = not options.pop("no_header")
    options["shuffle"] = not options.pop("no_shuffle")
    options["progress"] = not options.pop("quiet")
    if options["workers"] is None:
        del options["workers"]
    summary = preprocess_text(inputs, options.pop("out"), **options)
    print(summary.format())
    return 0


def _add_columns(p: argparse.ArgumentParser) -> Any:
    """The flags that say how to read text inputs (shared by preprocess and explore)."""
    g = p.add_argument_group("columns")
    g.add_argument("--text-column", dest="text_columns", nargs="+", type=_column,
                   help="name or 0-based index; several are joined with a space (default: text)")
    g.add_argument("--label-column", type=_column, help="name or index (default: label)")
    g.add_argument("--no-header", action="store_true", help="CSV/TSV without a header row")
    g.add_argument("--delimiter", help="CSV field separator (default: by extension)")
    return g


def _add_preprocess(sub: Any) -> None:
    p = sub.add_parser("preprocess", help="vectorize raw labelled text into a dataset on disk")
    p.add_argument("input", nargs="+", help="CSV/TSV, JSON Lines or folder-per-class inputs")
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("hdf5", "npy"), default="hdf5")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    g = _add_columns(p)
    g = p.add_argument_group("vectorizer")
    g.add_argument("--vectorizer", choices=("ngram", "sequence"), default="ngram")
    g.add_argument("--ngram-range", nargs=2, type=int, default=(1, 2), metavar=("MIN", "MAX"))
    g.add_argument("--min-df", type=int, default=2)
    g.add_argument("--top-k", type=int, default=20_000)
    g.add_argument("--analyzer", choices=("word", "char"), default="word")
    g.add_argument("--max-length", type=int, default=500)
    g = p.add_argument_group("split and order")
    split = g.add_mutually_exclusive_group()
    split.add_argument("--val-split", type=float, default=0.2, metavar="FRACTION")
    split.add_argument("--val", nargs="+", metavar="INPUT", help="validation inputs")
    g.add_argument("--seed", type=int, default=123)
    g.add_argument("--no-shuffle", action="store_true", help="write rows in source order")
    g = p.add_argument_group("resources")
    g.add_argument("--chunk-rows", type=int, default=4096)
    g.add_argument("--memory-budget", type=parse_size, default=1 << 30, metavar="SIZE")
    g.add_argument("--workers", type=int, default=None, help="default: all cores")
    again = g.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted run")
    again.add_argument("--restart", action="store_true",
                       help="discard an interrupted run's work directory and start over")
    g.add_argument("--on-bad-row", choices=("error", "skip"), default="error")
    g.add_argument("--strict-labels", action="store_true",
                   help="stop when labels write one integer in several forms ('1', '1.0')")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_preprocess)


def _add_explore(sub: Any) -> None:
    """Register ``ooc explore`` (the work is in :mod:`ooc.explore`, imported when it runs)."""

    def run(args: argparse.Namespace) -> int:
        from .explore import command

        return command(args)

    p = sub.add_parser("explore", help="describe a raw labelled text corpus (classes, lengths, "
                       "top n-grams) and recommend a model")
    p.add_argument("input", nargs="+", help="CSV/TSV, JSON Lines or folder-per-class inputs")
    g = _add_columns(p)
    g.add_argument("--on-bad-row", choices=("error", "skip"), default="error")
    g = p.add_argument_group("report")
    g.add_argument("--top", type=int, default=20, metavar="N", help="most frequent n-grams")
    g.add_argument("--ngram-range", nargs=2, type=int, default=(1, 2), metavar=("MIN", "MAX"))
    g.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    g.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots (needs matplotlib)")
    g.add_argument("--memory-budget", type=parse_size, default=256 << 20, metavar="SIZE")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="ooc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ooc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_preprocess(sub)
    _add_explore(sub)

    demo = sub.add_parser("demo", help="sample corpus -> ooc preprocess -> train a Keras MLP "
                          "from disk")
    demo.add_argument("--out", type=Path, default=None,
                      help="dataset path (default: data/demo/demo.h5, or data/demo/demo with "
                      "--format npy); the corpus is written beside it as corpus.csv")
    demo.add_argument("--format", choices=("hdf5", "npy"), default="hdf5")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace an existing dataset at --out")
    demo.add_argument("--docs", "--rows", dest="docs", type=int, default=20_000,
                      help="documents in the sample corpus")
    demo.add_argument("--top-k", "--features", dest="top_k", type=int, default=20_000,
                      help="n-gram features kept")
    demo.add_argument("--classes", type=int, default=4)
    demo.add_argument("--batch-size", type=int, default=128)
    demo.add_argument("--epochs", type=int, default=2)
    demo.add_argument("--seed", type=int, default=123)
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="describe a dataset: splits, shapes, classes, config")
    info.add_argument("path", type=Path)
    info.set_defaults(func=_cmd_info)

    verify = sub.add_parser("verify", help="check every stored checksum of a dataset")
    verify.add_argument("path", type=Path)
    verify.set_defaults(func=_cmd_verify)
    return parser


def _one_line_warnings(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` printing ooc's own warnings as one line on stderr."""
    default = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
             ) -> None:
        if not issubclass(category, OocWarning):
            default(message, category, *args, **kwargs)
            return
        print(f"ooc {command}: warning: {escape(str(message))}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ooc`` command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit: an error to report, not a kill
        with suppress(ValueError):  # only the main thread may set it
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command)
            return int(args.func(args))
    except (OocError, OSError, ValueError) as exc:
        print(f"ooc {args.command}: error: {escape(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ooc {args.command}: interrupted", file=sys.stderr)
        return 130
