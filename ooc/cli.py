"""The ``ooc`` command line: ``main(argv=None)`` with one subcommand each.

Heavy imports (TensorFlow/Keras) happen inside the subcommands that train.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._report import bytes_on_disk, human_bytes
from .errors import OocError


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
        print(f"config    {ds.metadata}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .reader import open as open_dataset

    with open_dataset(args.path, verify="always") as ds:
        ds.verify()
        rows = sum(len(s) for s in ds.splits.values())
    print(f"ok: {args.path}: every checksum of {len(ds.splits)} splits, {rows} rows matches")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="ooc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ooc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write a synthetic dataset and train a Keras MLP from disk")
    demo.add_argument("--out", type=Path, default=Path("data/demo.h5"))
    demo.add_argument("--format", choices=("hdf5", "npy"), default="hdf5")
    demo.add_argument("--rows", type=int, default=50_000)
    demo.add_argument("--features", type=int, default=20_000)
    demo.add_argument("--classes", type=int, default=4)
    demo.add_argument("--batch-size", type=int, default=128)
    demo.add_argument("--epochs", type=int, default=1)
    demo.add_argument("--seed", type=int, default=123)
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="describe a dataset: splits, shapes, classes, config")
    info.add_argument("path", type=Path)
    info.set_defaults(func=_cmd_info)

    verify = sub.add_parser("verify", help="check every stored checksum of a dataset")
    verify.add_argument("path", type=Path)
    verify.set_defaults(func=_cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ooc`` command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (OocError, OSError, ValueError) as exc:
        print(f"ooc {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ooc {args.command}: interrupted", file=sys.stderr)
        return 130
