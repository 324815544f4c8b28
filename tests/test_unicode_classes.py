# ruff: noqa: RUF001  (look-alike characters are what this file is about)
"""Every code point is tokenised as scikit-learn and Keras tokenise it.

The tokenizers carry their own knowledge of characters: which are ``\\w``,
what ``str.lower`` maps them to (the final-sigma rule included), what NFKD
minus combining marks leaves of them, which are ``\\s``.  These tests pin all
of it to Python's ``re``, ``str.lower`` and ``unicodedata`` (through the
references, scikit-learn and tf_keras) over every code point but the
surrogates, through the public :func:`ooc.text.tokenize.tokenize`, so a
tokenizer change or a Unicode version change that classifies one code point
differently fails here.

Each code point ``c`` is written into two probes, ``{c}{c}Σ1`` after a space
and ``aΣ{c}Σ1``, that make each of its properties visible in the tokens:

* what ``str.lower`` and NFKD make of ``c`` (ligatures, ``²``, ``½``, a
  lowercase longer than one character like ``İ``'s), and whether that is a
  word character, a space (doubled, and next to a space) or nothing (a
  combining mark, which joins its neighbours into one token);
* whether ``c`` is cased or case-ignorable (CPython checks the latter first),
  which decides where ``Σ`` lowercases to the final ``ς``: after ``{c}{c}``
  only when ``c`` is cased and not ignorable; before ``c`` only when ``c`` is
  neither (an ignorable ``c`` is skipped to the next ``Σ``, which is cased);
  after ``c`` only when ``c`` is cased or ignorable (then skipped to ``Σ``).

So every code point meets the final-sigma rule from the left and from the
right, and next to ASCII letters, Greek letters and a space.  The analyzers
also run without lowercasing and accent stripping (``RAW``), where the
character classes see the code points that preprocessing would have mapped
away (capitals, ``²``, ``İ``, no-break spaces).  The Keras reference is
tf_keras' own ``text_to_word_sequence``: importing TensorFlow takes seconds,
but the full suite pays that once (``tests/test_vectorizers.py`` needs it too).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from ooc.text.ngram_vectorizer import NgramVectorizer
from ooc.text.sequence_vectorizer import SequenceVectorizer
from ooc.text.tokenize import tokenize
from tests.test_vectorizers import (
    UNICODE_DOCS,
    assert_ngram_parity,
    keras,  # noqa: F401  (the module-scoped tf_keras fixture)
    keras_reference,
    keras_words,
    ngram_reference,
)

SURROGATES = range(0xD800, 0xE000)
CODE_POINTS = [c for c in range(0x110000) if c not in SURROGATES]
PER_DOC = 400  # code points per document: a few thousand documents
CALLS = 8  # tokenize() calls over all documents

Analyzer = Callable[[str], list[str]]


def probes(c: str) -> str:
    """The probes of code point ``c`` (see the module docstring)."""
    return f"{c}{c}Σ1 aΣ{c}Σ1"


def document(code_points: list[int]) -> str:
    """The probes of ``code_points``, each after a space; a sigma at each end of the
    document (no cased letter before the first, none after the last)."""
    return "Σa " + " ".join(probes(chr(c)) for c in code_points) + " aΣ"


def ascii_document(code_points: list[int]) -> str:
    """Probes without the sigma: a document that stays ASCII (the ASCII fast paths)."""
    return " ".join(f"a{chr(c)}{chr(c)}b {chr(c)}{chr(c)}" for c in code_points)


@pytest.fixture(scope="module")
def every_code_point() -> list[tuple[list[int], str]]:
    """(code points, document) for every code point, ASCII ones also in ASCII documents."""
    docs = [(CODE_POINTS[i:i + PER_DOC], document(CODE_POINTS[i:i + PER_DOC]))
            for i in range(0, len(CODE_POINTS), PER_DOC)]
    ascii_points = list(range(128))
    return [*docs, *((ascii_points[i:i + 32], ascii_document(ascii_points[i:i + 32]))
                     for i in range(0, 128, 32))]


def tokens_by_doc(docs: list[str], analyzer: str, **options: Any) -> Iterator[list[Any]]:
    """ooc's tokens of every document, as strings (code points for ``char``)."""
    tokens = tokenize(docs, analyzer, **options)
    values = tokens.ids if tokens.dictionary is None else np.array(
        tokens.strings(), dtype=object)[tokens.ids]
    for start, stop in zip(tokens.offsets[:-1], tokens.offsets[1:], strict=True):
        yield values[start:stop].tolist()


def assert_tokenizes_like(cases: list[tuple[list[int], str]], analyzer: str,
                          reference: Analyzer, **options: Any) -> None:
    """ooc tokenises every document of ``cases`` as ``reference`` does; if not, the
    message names the code points that differ (those of the first failing documents)."""
    docs = [doc for _, doc in cases]
    step = -(-len(docs) // CALLS)
    failing = []
    for first in range(0, len(docs), step):
        got = tokens_by_doc(docs[first:first + step], analyzer, **options)
        for (points, doc), ours in zip(cases[first:first + step], got, strict=True):
            if ours != reference(doc):
                failing.append(points)
    if failing:
        found = culprits([c for points in failing[:3] for c in points], analyzer, reference,
                         **options)
        pytest.fail(f"{len(failing)} of {len(docs)} documents of {analyzer!r} tokens differ; "
                    f"{len(found)} code points of the first ones differ on their own:\n"
                    + "\n".join(found[:20]))


def culprits(points: list[int], analyzer: str, reference: Analyzer,
             **options: Any) -> list[str]:
    """Which of ``points`` are tokenised unlike ``reference`` in a document of their own,
    each with both token lists."""
    docs = [document([c]) for c in points]
    found = []
    for c, doc, ours in zip(points, docs, tokens_by_doc(docs, analyzer, **options),
                            strict=True):
        expected = reference(doc)
        if ours != expected:
            found.append(f"U+{c:04X} {doc!r}: ooc {ours!r}, reference {expected!r}")
    return found


def sklearn_reference(analyzer: str, options: dict[str, Any]) -> Analyzer:
    """scikit-learn's analyzer with ``options`` (default: the guide's preprocessing),
    n-grams of one token; the char analyzer's tokens as code points."""
    settings = {"strip_accents": "unicode", **options}
    analyze = TfidfVectorizer(analyzer=analyzer, **settings).build_analyzer()
    if analyzer == "word":
        return analyze
    return lambda doc: [ord(ch) for ch in analyze(doc)]


RAW = {"lowercase": False, "strip_accents": None}
"""No preprocessing: the character classes see every code point as it is."""


@pytest.mark.parametrize("options", [{}, RAW], ids=["guide", "raw"])
@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_every_code_point_tokenizes_like_sklearn(every_code_point, analyzer, options):
    reference = sklearn_reference(analyzer, options)
    assert_tokenizes_like(every_code_point, analyzer, reference, **options)


@pytest.mark.parametrize("lowercase", [True, False])
def test_every_code_point_tokenizes_like_keras(every_code_point, lowercase):
    text = pytest.importorskip("tf_keras.preprocessing.text")

    def reference(doc: str) -> list[str]:
        return text.text_to_word_sequence(doc, lower=lowercase)

    assert_tokenizes_like(every_code_point, "keras", reference, lowercase=lowercase)


@pytest.mark.parametrize(("c", "kind", "sigmas"), [
    ("A", "cased", "ςσς"), ("ʰ", "cased and case-ignorable", "σσς"),
    ("'", "case-ignorable", "σσς"), ("\u0301", "combining mark", "σσς"),
    ("1", "neither", "σςσ"), ("İ", "cased, two characters in lowercase", "ςσς")])
def test_probes_see_each_final_sigma_context(c, kind, sigmas):
    """The probes' sigmas follow the class of ``c`` (so a misclassification shows)."""
    lowered = (" " + probes(c)).lower()
    assert "".join(ch for ch in lowered if ch in "σς") == sigmas, kind


# ------------------------------------------------------- vectorizers, Unicode corpus
UNICODE_WORDS = [w for doc in UNICODE_DOCS for w in doc.split(" ") if w]
SCRIPT_FEATURES = {  # the scripts are in the reference vocabulary (the corpus exercises them)
    "word": {"λογος", "οδυσσευς", "ılık", "istanbul", "日本語のテキスト", "カタカナ", "x2", "fifl",
             "文本", "naive", "strasse"},
    "char": {"ς", "ς ", "ı", "の", "カ", "文", "😀", "2", "fi"}}


def unicode_corpus(n: int = 240, classes: int = 3,
                   seed: int = 16) -> tuple[list[str], list[str]]:
    """``n`` documents of 6-18 words drawn from the hand-made Unicode documents, each
    class favouring its own third of the words (so the selection has signal)."""
    rng = random.Random(seed)
    third = len(UNICODE_WORDS) // classes
    texts, labels = [], []
    for i in range(n):
        label = i % classes
        own = UNICODE_WORDS[label * third:(label + 1) * third]
        words = [rng.choice(own if rng.random() < 0.6 else UNICODE_WORDS)
                 for _ in range(rng.randint(6, 18))]
        texts.append(" ".join(words))
        labels.append(f"class_{label}")
    return texts, labels


@pytest.mark.parametrize(("analyzer", "top_k"), [("word", 150), ("char", 400)])
def test_ngram_vectorizer_matches_sklearn_on_unicode_text(analyzer, top_k):
    texts, labels = unicode_corpus()
    fit, new = (texts[:200], labels[:200]), texts[200:]
    vec = NgramVectorizer(top_k=top_k, analyzer=analyzer).fit(
        [(fit[0][i:i + 64], fit[1][i:i + 64]) for i in range(0, 200, 64)])
    ref = ngram_reference(*fit, top_k, analyzer)
    assert top_k < ref.n_vocabulary  # the selection matters
    assert SCRIPT_FEATURES[analyzer] <= set(ref.tfidf.vocabulary_)
    names = list(vec.get_feature_names_out())
    assert sum(not n.isascii() for n in names) > top_k // 3
    assert_ngram_parity(ref, names, [(vec.transform(fit[0]), fit[0]), (vec.transform(new), new)])


def test_sequence_vectorizer_matches_keras_on_unicode_text(keras):  # noqa: F811
    texts, labels = unicode_corpus()
    vec = SequenceVectorizer(top_k=120, max_length=12).fit([(texts[:200], labels[:200])])
    tokenizer, _, (x_fit, x_new) = keras_reference(keras, texts[:200], [texts[200:]], 120, 12)
    assert vec.words == keras_words(tokenizer, 120)
    assert sum(not w.isascii() for w in vec.words) > 40
    np.testing.assert_array_equal(vec.transform(texts[:200]), x_fit)
    np.testing.assert_array_equal(vec.transform(texts[200:]), x_new)
