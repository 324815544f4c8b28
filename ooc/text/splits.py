"""Which split a row of ``ooc preprocess`` goes to: ``train``, ``val`` or ``test``.

Passes carry a row's split as a small code (uint8) indexing :data:`SPLITS`.
Rows of the main inputs are assigned by :func:`assign_splits`, a seeded
function of the row id alone, so the split does not depend on the number
of workers or the chunk size; rows of ``--val`` / ``--test`` inputs all go
to that split (:func:`one_split`).  Only ``train`` rows fit the vectorizer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._hash import uniform

SPLITS = ("train", "val", "test")
"""The splits, in output order; a row's split code indexes this tuple."""
TRAIN, VAL, TEST = range(len(SPLITS))


def assign_splits(row_ids: np.ndarray, val_fraction: float, test_fraction: float,
                  seed: int) -> np.ndarray:
    """Split code of each row: a seeded, stable function of its row id alone.

    With ``u`` the row's seeded uniform number in [0, 1), a row is test when
    ``u >= 1 - test_fraction``, validation when ``u < val_fraction``, else
    training.  The ranges are disjoint while ``val_fraction + test_fraction
    < 1``, and a test split leaves the validation rows of the same seed as
    they were.
    """
    u = uniform(row_ids, seed)
    split = np.full(len(row_ids), TRAIN, dtype=np.uint8)
    split[u < val_fraction] = VAL
    split[u >= 1 - test_fraction] = TEST  # none when 0: u < 1
    return split


def one_split(code: int) -> Callable[[np.ndarray], np.ndarray]:
    """Split codes putting every row in split ``code`` (for separate inputs)."""
    return lambda row_ids: np.full(len(row_ids), code, dtype=np.uint8)
