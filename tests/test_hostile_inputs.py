"""Hostile inputs: each gives a clear error naming the file and line, or a counted skip.

A corpus of parametrized cases, one per way a user's input can be wrong
(a str where texts are expected, labels in several forms, a corpus without
words, a stray quote, a UTF-16 file, ...).  Every case asserts the error
class and what its message names, or that every source row is accounted for.
"""

from __future__ import annotations

from typing import Any

import pytest

from ooc.errors import NotTextsError
from ooc.text.ngram_vectorizer import NgramVectorizer
from ooc.text.sequence_vectorizer import SequenceVectorizer

TEXTS = ["a good movie", "a bad movie", "good acting", "bad acting", "good plot", "bad plot"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"]


# ------------------------------------------------------------ vectorizer input
def _fitted(kind: str) -> Any:
    vec = NgramVectorizer(min_df=1, top_k=10) if kind == "ngram" else SequenceVectorizer()
    return vec.fit([(TEXTS, LABELS)])


NOT_TEXTS = {
    "str": ("one review", "string object received"),
    "bytes": (b"one review", "bytes object received"),
    "int": (42, "int object received"),
    "None": (None, "NoneType object received"),
    "list with a float": (["fine", float("nan")], "document 1 is a float"),
    "list with bytes": ([b"one review"], "document 0 is a bytes"),
}


@pytest.mark.parametrize("kind", ["ngram", "sequence"])
@pytest.mark.parametrize("case", NOT_TEXTS)
def test_transform_refuses_what_is_not_a_list_of_texts(kind: str, case: str) -> None:
    vec = _fitted(kind)
    value, message = NOT_TEXTS[case]
    with pytest.raises(NotTextsError, match=message) as caught:
        vec.transform(value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert "Iterable over raw text documents expected" in str(caught.value)


@pytest.mark.parametrize("cls", [NgramVectorizer, SequenceVectorizer])
def test_fit_refuses_a_chunk_whose_texts_are_one_str(cls: type) -> None:
    with pytest.raises(NotTextsError, match="string object received"):
        cls().fit([("one review", ["pos"])])


@pytest.mark.parametrize("kind", ["ngram", "sequence"])
def test_transform_still_takes_any_iterable_of_texts(kind: str) -> None:
    vec = _fitted(kind)
    rows = vec.transform(t for t in ["a good movie", "bad plot"])
    assert rows.shape[0] == 2
    assert vec.transform(("one review",)).shape[0] == 1
