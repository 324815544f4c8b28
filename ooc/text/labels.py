"""How labels are compared and ordered: one place for ``ooc preprocess``, ``explore`` and fits.

Labels are strings compared exactly as written (surrounding whitespace
stripped by the readers): ``'1'``, ``'01'`` and ``'1.0'`` are three
classes.  Files written by different tools often hold one class in several
forms, so labels that look like the same integer but are written
differently are reported: :func:`check_forms` warns with
:class:`~ooc.errors.LabelFormWarning`, or raises
:class:`~ooc.errors.CorpusError` when ``strict``.  Classes are ordered
numerically when every label is an integer, else by code point.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from ..errors import CorpusError, LabelFormWarning
from ._common import escape

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
SHOWN_GROUPS = 10
"""Groups of labels a report lists; the rest are counted."""


def integer_value(label: str) -> Decimal | None:
    """The integer ``label`` is written as (``'01'``, ``'1.0'``, ``'+1'``, ``'1e0'``), else None."""
    if len(label) > 100 or not _NUMBER.fullmatch(label):
        return None
    value = Decimal(label)
    return value if value == value.to_integral_value() else None


def form_groups(labels: Iterable[str]) -> list[list[str]]:
    """Groups of two or more distinct labels that write the same integer, by value."""
    by_value: defaultdict[Decimal, set[str]] = defaultdict(set)
    for label in labels:
        value = integer_value(label)
        if value is not None:
            by_value[value].add(label)
    return [sorted(forms) for value, forms in sorted(by_value.items()) if len(forms) > 1]


def check_forms(labels: Iterable[str], *, strict: bool, where: str) -> None:
    """Warn (or raise :class:`~ooc.errors.CorpusError` when ``strict``) about label forms.

    ``where`` names the inputs the labels come from, for the message.
    """
    groups = form_groups(labels)
    if not groups:
        return
    listed = "; ".join(" and ".join(f"'{escape(s)}'" for s in g) for g in groups[:SHOWN_GROUPS])
    if len(groups) > SHOWN_GROUPS:
        listed += f"; and {len(groups) - SHOWN_GROUPS} more groups"
    message = (f"{where}: labels that differ only in form are read as separate classes: "
               f"{listed}. Labels are compared as exact strings; write each class one way")
    if strict:
        raise CorpusError(message + ", then rerun.")
    warnings.warn(message + " (ooc preprocess --strict-labels, strict_labels=True, stops on "
                  "this).", LabelFormWarning, stacklevel=2)


def _is_int(label: str) -> bool:
    try:
        int(label)
    except ValueError:
        return False
    return True


def sort_classes(labels: Iterable[str]) -> list[str]:
    """Labels in numeric order when every one is an integer, else in code point order."""
    labels = list(labels)
    if all(_is_int(s) for s in labels):
        return sorted(labels, key=lambda s: (int(s), s))
    return sorted(labels)


def fit_classes(labels: Iterable[object]) -> list[object]:
    """A vectorizer fit's ``classes_``: the distinct labels sorted, their forms checked."""
    classes = sorted(set(labels))  # type: ignore[type-var]
    check_forms([c for c in classes if isinstance(c, str)], strict=False,
                where="the labels given to fit")
    return classes
