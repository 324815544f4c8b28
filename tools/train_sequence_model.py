"""Train the guide's sepCNN from an ooc token-sequence dataset on disk.

The dataset comes from ``ooc preprocess --vectorizer sequence``: padded
int32 word ids, with the fitted vocabulary stored inside.  The embedding
has one row per kept word plus one for padding (id 0)::

    ooc preprocess data/reviews.csv --out data/seq.h5 --vectorizer sequence
    python tools/train_sequence_model.py data/seq.h5 --save data/sepcnn.keras

Prints ``Validation accuracy: ..., loss: ...`` like the guide, for the best
epoch (lowest ``val_loss``, whose weights the model keeps and ``--save``
writes), and the time per epoch.  Exit status 0 on success, 1 with one line on error.
"""

from __future__ import annotations

import sys

from ooc.models import num_classes_of, run_training, sepcnn_model, training_parser
from ooc.reader import Dataset


def num_features(ds: Dataset) -> int:
    """Embedding rows: the stored vocabulary size + 1 (id 0 pads)."""
    settings = ds.metadata.get("vectorizer") or {}
    if settings.get("kind") != "sequence":
        raise ValueError(f"Expected a dataset made with --vectorizer sequence. Got "
                         f"vectorizer {settings.get('kind')!r} in {ds.path} instead.")
    return len(ds.vectorizer.words) + 1


def main(argv: list[str] | None = None) -> int:
    """Run the example; return the exit status."""
    p = training_parser(__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=2, help="sepCNN blocks incl. the last pair")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--embedding-dim", type=int, default=200)
    p.add_argument("--kernel-size", type=int, default=3)
    p.add_argument("--pool-size", type=int, default=3)
    args = p.parse_args(argv)

    def build(ds: Dataset) -> object:
        return sepcnn_model(args.blocks, args.filters, args.kernel_size, args.embedding_dim,
                            args.dropout, args.pool_size, input_shape=ds.train.shape[1:],
                            num_classes=num_classes_of(ds), num_features=num_features(ds),
                            learning_rate=args.learning_rate)

    return run_training(args, build, "train_sequence_model")


if __name__ == "__main__":
    sys.exit(main())
