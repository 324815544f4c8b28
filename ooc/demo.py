"""``ooc demo``: the main job end to end on the built-in sample corpus.

1. write a seeded synthetic labelled corpus (:mod:`ooc.sample_corpus`) as
   CSV beside the dataset (``corpus.csv``);
2. ``ooc preprocess`` it with the guide's n-gram defaults (TF-IDF of 1- and
   2-grams, ``min_df`` 2, top-k by ANOVA F, 20% validation) and print the
   summary;
3. train the guide's MLP from disk for a few epochs and print the
   validation accuracy (chance is ``1 / classes``).
"""

from __future__ import annotations

import argparse
import time

from ._report import human_bytes, peak_rss_bytes
from .preprocess import PreprocessConfig, preprocess
from .sample_corpus import write_sample_corpus


def _write_corpus(args: argparse.Namespace) -> str:
    t0 = time.perf_counter()
    corpus = write_sample_corpus(args.out.parent / "corpus.csv", args.docs, seed=args.seed,
                                 classes=args.classes)
    print(f"wrote {args.docs:,} documents, {args.classes} classes, to {corpus} "
          f"in {time.perf_counter() - t0:.1f} s\n", flush=True)
    return str(corpus)


def run_demo(args: argparse.Namespace) -> int:
    """Write the sample corpus, preprocess it, train the MLP from disk, print a summary."""
    corpus = _write_corpus(args)
    config = PreprocessConfig(inputs=(corpus,), out=str(args.out), format=args.format,
                              top_k=args.top_k, seed=args.seed, overwrite=True)
    summary = preprocess(config)
    print(summary.format() + "\n", flush=True)

    import keras

    from .models import mlp_model, train_from_disk
    from .reader import open as open_dataset

    keras.utils.set_random_seed(args.seed)
    with open_dataset(args.out) as ds:
        model = mlp_model(input_shape=ds.train.shape[1:], num_classes=len(ds.classes or ()))
        result = train_from_disk(model, ds, batch_size=args.batch_size, epochs=args.epochs,
                                 seed=args.seed)
    print("\nsummary")
    print(f"  dataset   {args.out}: train {ds.train.shape}, val {ds.val.shape}")
    print(f"  train     {result.epochs} epoch(s), {sum(result.epoch_seconds):.1f} s")
    print(f"  val acc   {result.val_acc:.3f} (chance {1 / args.classes:.3f}), "
          f"val loss {result.val_loss:.3f}")
    print(f"  peak RSS  {human_bytes(peak_rss_bytes())} (this process)")
    return 0
