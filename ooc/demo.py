"""``ooc demo``: the main job end to end on the built-in sample corpus.

1. write a seeded synthetic labelled corpus (:mod:`ooc.sample_corpus`) as
   CSV beside the dataset (``corpus.csv``; an existing one is used only if
   it is byte for byte the corpus asked for, and is never replaced);
2. ``ooc preprocess`` it with the guide's n-gram defaults (TF-IDF of 1- and
   2-grams, ``min_df`` 2, top-k by ANOVA F, 20% validation) and print the
   summary;
3. train the guide's MLP from disk for a few epochs and print the
   validation accuracy (chance is ``1 / classes``).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import time
from pathlib import Path

from ._report import human_peak, peak_rss_bytes
from .errors import OutputConflictError
from .preprocess import PreprocessConfig, preprocess
from .sample_corpus import write_sample_corpus
from .store._atomic import check_output

DEFAULT_OUT = {"hdf5": Path("data/demo/demo.h5"), "npy": Path("data/demo/demo")}


def demo_out(out: Path | None, fmt: str) -> Path:
    """The dataset path: ``out``, or the default for ``fmt``; npy never gets an ``.h5`` name."""
    if out is None:
        return DEFAULT_OUT[fmt]
    if fmt == "npy" and out.suffix.lower() in (".h5", ".hdf5"):
        raise ValueError(f"--out {out}: --format npy writes a directory, which would be "
                         "named like an HDF5 file. Choose a name without .h5, or use "
                         "--format hdf5.")
    return out


def write_corpus(path: Path, docs: int, seed: int, classes: int) -> Path:
    """Write the sample corpus to ``path``, or use the file there if it is the same corpus.

    An existing file that differs is refused, never replaced: it may be the
    user's.  The corpus is generated beside it first and then compared.
    """
    candidate = path.with_name(f"{path.name}.new-{os.getpid()}")
    try:
        write_sample_corpus(candidate, docs, seed=seed, classes=classes)
        if not path.exists():
            os.replace(candidate, path)
        elif not filecmp.cmp(candidate, path, shallow=False):
            raise OutputConflictError(
                f"{path}: a file is here that is not the sample corpus this demo writes "
                f"(--docs {docs} --classes {classes} --seed {seed}); the demo never replaces "
                "it. Move it away, or choose an --out in another directory.")
    finally:
        candidate.unlink(missing_ok=True)
    return path


def _write_corpus(args: argparse.Namespace, out: Path) -> str:
    t0 = time.perf_counter()
    path = out.parent / "corpus.csv"
    verb = "using the same" if path.exists() else "wrote"
    corpus = write_corpus(path, args.docs, args.seed, args.classes)
    print(f"{verb} {args.docs:,} documents, {args.classes} classes, in {corpus} "
          f"({time.perf_counter() - t0:.1f} s)\n", flush=True)
    return str(corpus)


def run_demo(args: argparse.Namespace) -> int:
    """Write the sample corpus, preprocess it, train the MLP from disk, print a summary."""
    out = args.out = demo_out(args.out, args.format)
    check_output(out, args.overwrite)  # before the corpus, so a refusal leaves no trace
    corpus = _write_corpus(args, out)
    config = PreprocessConfig(inputs=(corpus,), out=str(out), format=args.format,
                              top_k=args.top_k, seed=args.seed, overwrite=args.overwrite)
    summary = preprocess(config)
    print(summary.format() + "\n", flush=True)

    from ._tensorflow import import_keras
    from .models import mlp_model, train_from_disk
    from .reader import open as open_dataset

    import_keras().utils.set_random_seed(args.seed)
    with open_dataset(args.out) as ds:
        model = mlp_model(input_shape=ds.train.shape[1:], num_classes=len(ds.classes or ()))
        result = train_from_disk(model, ds, batch_size=args.batch_size, epochs=args.epochs,
                                 seed=args.seed)
    print("\nsummary")
    print(f"  dataset   {args.out}: train {ds.train.shape}, val {ds.val.shape}")
    print(f"  train     {result.epochs} epoch(s), {sum(result.epoch_seconds):.1f} s; "
          f"weights of the best, epoch {result.best_epoch}")
    print(f"  val acc   {result.val_acc:.3f} (chance {1 / args.classes:.3f}), "
          f"val loss {result.val_loss:.3f}")
    print(f"  peak RSS  {human_peak(peak_rss_bytes())} (this process)")
    return 0
