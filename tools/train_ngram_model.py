"""Train the guide's n-gram MLP from an ooc dataset on disk.

The dataset comes from ``ooc preprocess`` with the n-gram vectorizer (the
default): TF-IDF rows, top-k features.  Training reads one contiguous batch
at a time (``ds.train.batches(...)``), so memory stays bounded whatever the
number of rows::

    ooc preprocess data/reviews.csv --out data/reviews.h5
    python tools/train_ngram_model.py data/reviews.h5 --save data/mlp.keras

Prints ``Validation accuracy: ..., loss: ...`` like the guide, for the best
epoch (lowest ``val_loss``, whose weights the model keeps and ``--save``
writes), and the time per epoch.  Exit status 0 on success, 1 with one line on error.
"""

from __future__ import annotations

import sys

from ooc.models import mlp_model, num_classes_of, run_training, training_parser
from ooc.reader import Dataset


def main(argv: list[str] | None = None) -> int:
    """Run the example; return the exit status."""
    p = training_parser(__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=2, help="dense layers incl. the output")
    p.add_argument("--units", type=int, default=64, help="units per hidden layer")
    args = p.parse_args(argv)

    def build(ds: Dataset) -> object:
        if not ds.train.is_sparse and ds.train.x.dtype.kind in "iu":
            raise ValueError(f"{ds.path} holds token sequences; use train_sequence_model.py.")
        return mlp_model(args.layers, args.units, args.dropout,
                         input_shape=ds.train.shape[1:], num_classes=num_classes_of(ds),
                         learning_rate=args.learning_rate)

    return run_training(args, build, "train_ngram_model")


if __name__ == "__main__":
    sys.exit(main())
