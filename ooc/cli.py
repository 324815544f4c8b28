"""The ``ooc`` command line: ``main(argv=None)`` with one subcommand each.

Heavy imports (TensorFlow/Keras) happen inside the subcommands that train.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from ._platform import SIGXFSZ
from ._report import bytes_on_disk, human_bytes
from .errors import OocError, OocWarning
from .text._common import escape


def dataset_info(ds: Any) -> dict[str, Any]:
    """What ``ooc info`` reports about an open dataset, as plain JSON-ready values."""
    splits = {}
    for name, split in ds.splits.items():
        counts = [int(c) for c in split.label_counts]
        names = ds.classes or [str(i) for i in range(len(counts))]
        splits[name] = {"rows": len(split), "columns": int(split.shape[1]),
                        "storage": "sparse csr" if split.is_sparse else "dense",
                        "dtype": str(split.x.dtype),
                        "labels": {str(names[i]) if i < len(names) else str(i): c
                                   for i, c in enumerate(counts)}}
        if split.is_sparse:  # a dense split stores every cell; its count says nothing
            splits[name]["non_zeros"] = int(split.nnz)
    # a remote dataset: what its local cache holds
    info = {"path": str(ds.path), "bytes_on_disk": bytes_on_disk(Path(ds._store.path)),
            "format_version": ds.manifest["format_version"],
            "created_by": ds.manifest["created_by"], "splits": splits,
            "classes": ds.classes,
            "feature_names": None if ds.feature_names is None else len(ds.feature_names)}
    if _is_sequence(ds):
        info["vocabulary_size"] = len(ds.vectorizer.words)
    info["metadata"] = ds.metadata
    return info


def _is_sequence(ds: Any) -> bool:
    vectorizer = ds.metadata.get("vectorizer")
    return isinstance(vectorizer, dict) and vectorizer.get("kind") == "sequence"


def _format_info(info: dict[str, Any]) -> str:
    """``ooc info``'s text report: numbers with thousands separators."""
    lines = [f"dataset   {info['path']} ({human_bytes(info['bytes_on_disk'])} on disk, "
             f"format version {info['format_version']}, {info['created_by']})"]
    columns = "token ids" if "vocabulary_size" in info else "features"
    for name, split in info["splits"].items():
        nnz = f", {split['non_zeros']:,} non-zeros" if "non_zeros" in split else ""
        lines.append(f"split     {name}: {split['rows']:,} rows x {split['columns']:,} {columns}, "
                     f"{split['storage']}, {split['dtype']}{nnz}")
        lines.append("          labels: " + ", ".join(
            f"{label}={count:,}" for label, count in split["labels"].items()))
    lines.append(f"classes   {info['classes']}")
    if "vocabulary_size" in info:
        lines.append(f"vocab     {info['vocabulary_size']:,} words (ids 1 to "
                     f"{info['vocabulary_size']:,}; 0 pads)")
    names = info["feature_names"]
    lines.append(f"features  {'none' if names is None else f'{names:,}'} names stored")
    for key, value in info["metadata"].items():  # e.g. vectorizer and preprocess settings
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_setting(k, v)}" for k, v in value.items() if k != "classes")
        lines.append(f"{key:<9} {value}")
    return "\n".join(lines)


def _setting(key: str, value: Any) -> str:
    """A stored setting as written, sizes in binary units (no separators: the list has commas)."""
    return human_bytes(value) if key == "memory_budget" and isinstance(value, int) else repr(value)


def _cmd_info(args: argparse.Namespace) -> int:
    from .reader import open as open_dataset

    with open_dataset(args.path, verify="never") as ds:
        info = dataset_info(ds)
    print(json.dumps(info, indent=2, default=str) if args.json else _format_info(info))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .reader import open as open_dataset

    with open_dataset(args.path, verify="always") as ds:
        ds.verify()
        rows = sum(len(s) for s in ds.splits.values())
    print(f"ok: {args.path}: every checksum of {len(ds.splits)} splits, {rows} rows matches")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from .store.remote import cache_root, clear_fetched, fetched

    root = cache_root()
    if args.clear:
        print(f"removed {human_bytes(clear_fetched())} of fetched datasets from {root}")
        return 0
    datasets = fetched()
    in_progress = sum(bytes_on_disk(root / d) for d in ("staging", "parts") if (root / d).is_dir())
    print(f"cache     {root} (set OOC_CACHE_DIR to move it)")
    print(f"  fetched     {human_bytes(sum(map(bytes_on_disk, datasets)))} from "
          f"{len(datasets):,} URLs (ooc cache --clear deletes them)")
    print(f"  in progress {human_bytes(in_progress)} (writes to URLs: staging copies, parts)")
    return 0


def parse_size(text: str) -> int:
    """``"1G"``, ``"512M"``, ``"2GiB"``, ``"1000000"`` -> bytes (at least 16 MiB)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = cleaned.rstrip("KMGT"), cleaned[len(cleaned.rstrip("KMGT")):]
    try:
        size = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"expected a size like 1G, 512M or 2GiB; got {text!r}") from None
    if size < MIN_MEMORY_BUDGET:  # what preprocess and explore need at least
        raise argparse.ArgumentTypeError(
            f"expected at least {human_bytes(MIN_MEMORY_BUDGET)}; got {human_bytes(size)}")
    return size


MIN_MEMORY_BUDGET = 16 << 20


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {value}")
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends each option's default to its help (sizes as ``1 GiB``); keeps epilogs as written.

    Flags (default False) and options without a default say nothing, so the
    help of those that mean "decided later" (``--workers``) says what happens.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) \
                or not action.option_strings:
            return text
        if action.type is parse_size:
            shown = human_bytes(default)
        elif isinstance(default, (tuple, list)):
            shown = " ".join(str(v) for v in default)
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line that names the option, like every other ooc error.

    ``check(args)``, when given, returns the usage error of options that are
    each valid but not together (or None), once the command line is parsed.
    """

    def __init__(self, *args: Any, check: Callable[[argparse.Namespace], str | None] | None
                 = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.check = check

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        namespace, extras = super().parse_known_args(args, namespace)
        problem = self.check(namespace) if self.check is not None else None
        if problem:
            self.error(problem)
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _column(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from .preprocess import preprocess_text

    options = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    inputs = options.pop("input")
    options["val_inputs"] = options.pop("val") or ()
    options["test_inputs"] = options.pop("test") or ()
    options["text_columns"] = options["text_columns"] or ()
    options["header"] = not options.pop("no_header")
    options["shuffle"] = not options.pop("no_shuffle")
    options["progress"] = not options.pop("quiet")
    if options["workers"] is None:
        del options["workers"]
    summary = preprocess_text(inputs, options.pop("out"), **options)
    print(summary.format())
    return 0


def _add_input_options(p: argparse.ArgumentParser) -> Any:
    """The flags that say how to read text inputs (shared by preprocess and explore)."""
    g = p.add_argument_group("reading the inputs")
    g.add_argument("--text-column", dest="text_columns", nargs="+", type=_column,
                   help="name or 0-based index; several are joined with a space (default: text)")
    g.add_argument("--label-column", type=_column,
                   help="name or 0-based index (default: label)")
    g.add_argument("--no-header", action="store_true", help="CSV/TSV without a header row")
    g.add_argument("--delimiter",
                   help="CSV field separator (default: by extension, tab for .tsv, else comma)")
    g.add_argument("--on-bad-row", choices=("error", "skip"), default="error",
                   help="stop at a malformed row (error), or skip it and list it in a "
                   "rejects file (skip)")
    g.add_argument("--encoding", default="utf-8",
                   help="text encoding of the inputs (Parquet strings are always UTF-8), any "
                   "Python codec: latin-1, cp1252, utf-16, ... (default: utf-8, a byte order "
                   "mark dropped)")
    g.add_argument("--decode-errors", choices=("strict", "replace"), default="strict",
                   help="bytes the encoding cannot decode: strict makes the row a bad row, "
                   "replace reads them as U+FFFD and keeps it (default: strict)")
    g.add_argument("--limit", type=_positive_int, metavar="N",
                   help="read only the first N rows of the inputs (and of --val and --test "
                   "inputs), bad rows included, e.g. to try settings (default: all)")
    return g


PREPROCESS_EXAMPLES = """\
examples:
  ooc preprocess reviews.csv --out reviews.h5
  ooc preprocess train.jsonl --val val.jsonl --out data/ --format npy
  ooc preprocess reviews.csv --out reviews.h5 --val-split 0.1 --test-split 0.1
  ooc preprocess reviews.csv --out seq.h5 --vectorizer sequence --top-k 20000 --max-length 500
  ooc preprocess big.csv.gz --out big.h5 --memory-budget 4G --workers 8 --resume
"""


def _add_preprocess(sub: Any) -> None:
    p = sub.add_parser("preprocess", help="vectorize raw labelled text into a dataset on disk",
                       description="Vectorize raw labelled text into a dataset on disk, "
                       "in bounded memory.", epilog=PREPROCESS_EXAMPLES,
                       check=_check_split_fractions)
    p.add_argument("input", nargs="+",
                   help="CSV/TSV, JSON Lines, Parquet or folder-per-class inputs")
    p.add_argument("--out", required=True,
                   help="dataset to write: a .h5 file or an npy folder, or a URL "
                   "(s3://bucket/ds, any fsspec URL; needs pip install 'ooc[s3]'): with "
                   "--shard-rows each part is uploaded by the worker that wrote it")
    p.add_argument("--format", choices=("hdf5", "npy"), default="hdf5", help="storage backend")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    _add_input_options(p)
    g = p.add_argument_group("vectorizer")
    g.add_argument("--vectorizer", choices=("ngram", "sequence"), default="ngram",
                   help="tf-idf n-gram vectors (for an MLP) or padded token ids (for a sepCNN)")
    g.add_argument("--ngram-range", nargs=2, type=_positive_int, default=(1, 2),
                   metavar=("MIN", "MAX"), help="n-gram lengths kept; ngram only")
    g.add_argument("--min-df", type=_positive_int, default=2,
                   help="drop n-grams found in fewer training rows; ngram only")
    g.add_argument("--top-k", type=_positive_int, default=20_000,
                   help="features kept: n-grams (ngram) or words of the vocabulary (sequence)")
    g.add_argument("--analyzer", choices=("word", "char"), default="word",
                   help="n-grams of words or of characters; ngram only")
    g.add_argument("--max-length", type=_positive_int, default=500,
                   help="tokens a row keeps (longer texts are cut, shorter padded); sequence only")
    g = p.add_argument_group("split and order")
    split = g.add_mutually_exclusive_group()
    split.add_argument("--val-split", type=_fraction, default=0.2, metavar="FRACTION",
                       help="fraction of the input rows held out for validation")
    split.add_argument("--val", nargs="+", metavar="INPUT",
                       help="validation inputs (instead of --val-split)")
    split = g.add_mutually_exclusive_group()
    split.add_argument("--test-split", type=_fraction, default=0.0, metavar="FRACTION",
                       help="fraction of the input rows held out as a test split, never "
                       "seen by the fit, disjoint from the validation rows (default: 0, none)")
    split.add_argument("--test", nargs="+", metavar="INPUT",
                       help="test inputs (instead of --test-split)")
    g.add_argument("--seed", type=int, default=123, help="seed of the split and the shuffle")
    g.add_argument("--no-shuffle", action="store_true", help="write rows in source order")
    g = p.add_argument_group("resources")
    g.add_argument("--chunk-rows", type=_positive_int, default=4096,
                   help="rows read and vectorized at once")
    g.add_argument("--shard-rows", type=_positive_int, metavar="ROWS",
                   help="write a sharded dataset: a folder of parts of about ROWS rows each, "
                   "written in parallel by the workers (or Dask tasks) and read by ooc.open "
                   "as one dataset; a part holds whole shuffle buckets (1,024 to 8,192 "
                   "rows) or input chunks; --format sets the parts' backend (default: one "
                   "file or folder, written by this process)")
    g.add_argument("--memory-budget", type=parse_size, default=1 << 30, metavar="SIZE",
                   help="memory the counting and shuffling may use")
    g.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes; with --scheduler, the workers planned for (twice "
                   "as many jobs in flight, each with its share of --memory-budget), and "
                   "the processes of 'local' (default: all cores)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on a Dask cluster: a scheduler's address "
                   "(tcp://HOST:8786), or 'local' for a LocalCluster of --workers "
                   "processes; the work directory (--work-dir) must be on a filesystem "
                   "every worker reaches, and so must --out unless it is a URL; needs pip "
                   "install 'ooc[dask]' (default: a local process pool, no Dask)")
    g.add_argument("--work-dir", metavar="DIR",
                   help="where the run's work directory goes (spilled counts, shuffle "
                   "buckets, progress for --resume; about the size of the output): on a "
                   "cluster a filesystem every worker reaches (default: beside --out; for an "
                   "--out URL, the local cache)")
    again = g.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted run")
    again.add_argument("--restart", action="store_true",
                       help="discard an interrupted run's work directory and start over")
    g.add_argument("--strict-labels", action="store_true",
                   help="stop when labels write one integer in several forms ('1', '1.0')")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_preprocess)


def _check_split_fractions(args: argparse.Namespace) -> str | None:
    """The held-out fractions must leave training rows."""
    val = 0.0 if args.val else args.val_split
    if val + args.test_split >= 1:
        return ("--val-split + --test-split must be below 1, to leave training rows; "
                f"got {val} + {args.test_split}")
    return None


def _add_explore(sub: Any) -> None:
    """Register ``ooc explore`` (the work is in :mod:`ooc.explore`, imported when it runs)."""

    def run(args: argparse.Namespace) -> int:
        from .explore import command

        return command(args)

    p = sub.add_parser("explore", help="describe a raw labelled text corpus (classes, lengths, "
                       "top n-grams) and recommend a model")
    p.add_argument("input", nargs="+",
                   help="CSV/TSV, JSON Lines, Parquet or folder-per-class inputs")
    _add_input_options(p)
    g = p.add_argument_group("report")
    g.add_argument("--top", type=int, default=20, metavar="N",
                   help="most frequent n-grams listed (0: none)")
    g.add_argument("--ngram-range", nargs=2, type=_positive_int, default=(1, 2),
                   metavar=("MIN", "MAX"), help="n-gram lengths counted")
    g.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    g.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots (needs matplotlib)")
    g.add_argument("--memory-budget", type=parse_size, default=256 << 20, metavar="SIZE",
                   help="memory the n-gram counts may use")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="sample corpus -> ooc preprocess -> train a Keras MLP "
                          "from disk")
    demo.add_argument("--out", type=Path, default=None,
                      help="dataset path (default: data/demo/demo.h5, or data/demo/demo with "
                      "--format npy); the corpus is written beside it as corpus.csv")
    demo.add_argument("--format", choices=("hdf5", "npy"), default="hdf5",
                      help="storage backend")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace an existing dataset at --out")
    demo.add_argument("--docs", "--rows", dest="docs", type=_positive_int, default=20_000,
                      help="documents in the sample corpus")
    demo.add_argument("--top-k", "--features", dest="top_k", type=_positive_int, default=20_000,
                      help="n-gram features kept")
    demo.add_argument("--classes", type=_positive_int, default=4, help="classes of the corpus")
    demo.add_argument("--batch-size", type=_positive_int, default=128, help="training batch")
    demo.add_argument("--epochs", type=_positive_int, default=2, help="training epochs")
    demo.add_argument("--seed", type=int, default=123, help="seed of corpus and training")
    demo.set_defaults(func=_cmd_demo)


DESCRIPTION = """\
ooc: out-of-core text datasets for Keras. Vectorize labelled text larger than
memory into a chunked dataset on disk (HDF5 or .npy), then train from it in
batches. Run 'ooc COMMAND --help' for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="ooc", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ooc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_preprocess(sub)
    _add_explore(sub)
    _add_demo(sub)
    info = sub.add_parser("info", help="describe a dataset: splits, shapes, classes, config")
    info.add_argument("path", help="a dataset (.h5 file, npy or sharded folder, or URL)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.set_defaults(func=_cmd_info)
    verify = sub.add_parser("verify", help="check every stored checksum of a dataset")
    verify.add_argument("path", help="a dataset (.h5 file, npy or sharded folder, or URL)")
    verify.set_defaults(func=_cmd_verify)
    cache = sub.add_parser("cache", help="the local cache of datasets read from URLs: where "
                           "it is, its size; --clear deletes the fetched datasets")
    cache.add_argument("--clear", action="store_true",
                       help="delete every fetched dataset (safe while readers are open: they "
                       "fetch again what they read next); writes in progress are kept")
    cache.set_defaults(func=_cmd_cache)
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


def _quiet_broken_pipe() -> int:
    """``ooc ... | head``: the reader left; stop quietly with the status of a SIGPIPE death.

    stdout goes to devnull first, so the interpreter's flush at exit cannot
    raise again (Python's documented recipe).
    """
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + SIGPIPE


SIGPIPE = 13  # its number on every POSIX system; Windows has no signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ooc`` command line; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else 2
    if SIGXFSZ is not None:  # past a file-size limit: an error to report, not a kill
        with suppress(ValueError):  # only the main thread may set it
            signal.signal(SIGXFSZ, signal.SIG_IGN)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command)
            status = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (OocError, OSError, ValueError) as exc:
        print(f"ooc {args.command}: error: {escape(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = "; rerun with --resume to continue" if args.command == "preprocess" else ""
        print(f"ooc {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
