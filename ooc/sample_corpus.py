"""A built-in, seeded synthetic labelled text corpus (the sample data of ``ooc demo``).

The generator behind ``tools/make_corpus.py``, kept in the package so that
``ooc demo`` works from an installed copy.  The corpus looks enough like
product reviews to exercise a tokenizer and a classifier, and it is
generated as a stream, so 3,000,000 documents take the same memory as 3,000:

* a shared vocabulary of pronounceable lowercase words (made from the seed),
  drawn with Zipf-like (power-law) frequencies, the most frequent ranks being
  real English function words ("the", "and", "it");
* per-class *signal* words: mid-frequency words that appear more often in
  their own class, so a TF-IDF + MLP classifier learns well above chance;
* sentences: capitalized, with commas, periods, "!" and "?"; occasional
  digits, contractions and hyphenated words and straight quotes; about 2% of
  documents hold a non-ASCII word ("café", curly quotes, an emoji);
* lognormal document lengths around ``words_per_doc`` (at least one word);
* labels ``class_0 .. class_{K-1}``, or integers with ``int_labels=True``,
  drawn uniformly at random per row.

Every document is a pure function of ``(seed, class, index within class)``.

Usage::

    texts, labels = generate_docs(1000, seed=1)
    write_sample_corpus("data/demo/corpus.csv", docs=20_000, seed=0)
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BLOCK_DOCS = 1024  # documents generated at once per class (fixed: part of the output)
LABEL_CHUNK = 16384  # rows written at once (fixed: labels are drawn in these chunks)

ZIPF_EXPONENT = 1.07
LENGTH_SIGMA = 0.6  # lognormal spread of document lengths
SIGNAL_RATE = 0.05  # fraction of tokens replaced by a class signal word
SIGNAL_OWN = 0.7  # ... of which this fraction comes from the document's own class
SPECIAL_RATE = 0.03  # digits, contractions, hyphenated and quoted words
NON_ASCII_DOCS = 0.02  # fraction of documents holding one non-ASCII word
SENTENCE_END = 0.08  # chance that a word ends a sentence
COMMA = 0.06  # chance that a word is followed by a comma
TITLE_WORDS = (2, 7)  # title lengths, uniform in [low, high)


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())


REAL_WORDS = _words(
    "the and i it to a this is was for of my in but not with that you on very have great "
    "good so they are be one as just all would like at if product had love use can get "
    "well no its will really out these when or from time easy much quality more than"
)
SPECIAL_WORDS = _words(
    "don't it's i'm can't won't isn't didn't doesn't wasn't they're you'll i've couldn't "
    "well-made must-have long-lasting user-friendly so-so high-quality top-notch "
    "over-priced one-star five-star 1 2 3 4 5 10 12 20 30 100 2019 2021 24/7 $15 $49.99 "
    '3x 50% "great" "new" "works"'
)
NON_ASCII_WORDS = _words(
    "café naïve résumé jalapeño über façade crème brûlée déjà-vu señor Zürich coöperate "
    "\u201cgreat\u201d \u201cmeh\u201d \u2018okay\u2019 \u2026 \U0001f600 \U0001f44d "
    "\u2605\u2605\u2605\u2605\u2605 5\u20ac"
)
SEPARATORS = (" ", ", ", ". ", "! ", "? ", ".\n", "!\n", "?\n", "\n")
SEP_SPACE, SEP_COMMA, SEP_PERIOD, SEP_EXCLAIM, SEP_QUESTION = range(5)
SEP_END_PERIOD, SEP_NEWLINE = 5, 8
END_MIX = (0.8, 0.12, 0.08)  # period, "!", "?" among sentence ends

ONSETS = _words("b c d f g h j k l m n p r s t v w y z ch sh th tr br pl st gr cl fr sp")
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "oo", "ou", "ie"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "rk"]


@dataclass(frozen=True)
class CorpusConfig:
    """What to generate. Checked on construction."""

    docs: int
    classes: int = 5
    words_per_doc: int = 80
    vocab: int = 50_000
    seed: int = 0
    int_labels: bool = False
    title: bool = False
    sorted_by_class: bool = False

    def __post_init__(self) -> None:
        _check_int("docs", self.docs, 0)
        _check_int("classes", self.classes, 1)
        _check_int("words_per_doc", self.words_per_doc, 1)
        _check_int("vocab", self.vocab, 200)
        _check_int("seed", self.seed, 0)
        if self.classes > self.vocab // 20:
            raise ValueError(
                f"Expected at most vocab // 20 = {self.vocab // 20} classes (each class needs "
                f"signal words). Got classes={self.classes}; raise --vocab."
            )

    @property
    def class_names(self) -> list[str | int]:
        """Label of each class as written."""
        if self.int_labels:
            return list(range(self.classes))
        return [f"class_{k}" for k in range(self.classes)]




@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of the corpus: labels as class indices, texts, titles."""

    labels: np.ndarray
    texts: list[str]
    titles: list[str] | None


def _check_int(name: str, value: Any, low: int) -> None:
    """Raise ValueError unless ``value`` is an int >= ``low``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"Expected {name} to be an integer >= {low}. Got {value!r} instead.")


# -- vocabulary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """Every piece of text as one UTF-8 byte blob, plus sampling tables.

    Piece ids: ``[0, n_words)`` the Zipf-ranked vocabulary, then the special
    words, the non-ASCII words and the separators, at the offsets below.
    """

    blob: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    cdf: np.ndarray
    signal: np.ndarray  # (classes, per class) word ids
    n_words: int
    special_start: int = field(init=False)
    non_ascii_start: int = field(init=False)
    sep_start: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "special_start", self.n_words)
        object.__setattr__(self, "non_ascii_start", self.n_words + len(SPECIAL_WORDS))
        object.__setattr__(self, "sep_start", self.non_ascii_start + len(NON_ASCII_WORDS))

    def piece(self, i: int) -> str:
        """The text of piece ``i`` (a word id is a piece id)."""
        start = int(self.offsets[i])
        return self.blob[start : start + int(self.lengths[i])].tobytes().decode("utf-8")


def _pseudo_words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` candidate pronounceable words of 1-3 syllables (may repeat)."""
    syllables = [o + v + c for o in ONSETS for v in VOWELS for c in CODAS] + [""]
    counts = rng.choice([1, 2, 3], size=n, p=[0.15, 0.55, 0.30])
    codes = rng.integers(0, len(syllables) - 1, (n, 3))
    codes[counts < 2, 1] = -1  # -1 picks the empty syllable
    codes[counts < 3, 2] = -1
    return [syllables[a] + syllables[b] + syllables[c] for a, b, c in codes.tolist()]


def _word_list(rng: np.random.Generator, size: int) -> list[str]:
    """``size`` distinct words, most frequent first: real words, then short pseudo-words."""
    candidates = dict.fromkeys(_pseudo_words(rng, 2 * size + 1000))
    for word in REAL_WORDS:
        candidates.pop(word, None)
    pseudo = list(candidates)[: size - len(REAL_WORDS)]
    words = [*REAL_WORDS, *sorted(pseudo, key=len)]  # stable: short words are frequent
    if len(words) < size:
        raise AssertionError(f"could only make {len(words)} distinct words, needed {size}")
    return words


def build_vocabulary(config: CorpusConfig) -> Vocabulary:
    """The seeded vocabulary, Zipf table and per-class signal words of ``config``."""
    rng = np.random.default_rng([config.seed, 0])
    words = _word_list(rng, config.vocab)
    pieces = [*words, *SPECIAL_WORDS, *NON_ASCII_WORDS, *SEPARATORS]
    encoded = [p.encode("utf-8") for p in pieces]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    weights = 1.0 / np.arange(1, config.vocab + 1) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights) / weights.sum()
    per_class = min(40, config.vocab // (10 * config.classes))
    low = min(100, config.vocab // 10)
    pool = rng.choice(np.arange(low, config.vocab // 2), per_class * config.classes, replace=False)
    signal = pool.reshape(config.classes, per_class)
    return Vocabulary(blob, offsets, lengths, cdf, signal, config.vocab)


# -- documents -------------------------------------------------------------------------------


def _draw_lengths(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """Lognormal document lengths with the given mean, at least 1, at most 20x the mean."""
    mu = np.log(mean) - LENGTH_SIGMA**2 / 2
    lengths = np.rint(rng.lognormal(mu, LENGTH_SIGMA, n))
    return np.clip(lengths, 1, max(1, 20 * mean)).astype(np.int64)


def _draw_words(
    rng: np.random.Generator, vocab: Vocabulary, k: int, lengths: np.ndarray
) -> np.ndarray:
    """Word ids for documents of class ``k``: Zipf draws, signal words, special words."""
    total = int(lengths.sum())
    ids = np.searchsorted(vocab.cdf, rng.random(total), side="right")
    u = rng.random(total)
    signal = u < SIGNAL_RATE
    own = rng.random(total) < SIGNAL_OWN
    cls = np.where(own, k, rng.integers(0, vocab.signal.shape[0], total))
    col = rng.integers(0, vocab.signal.shape[1], total)
    ids[signal] = vocab.signal[cls[signal], col[signal]]
    special = (u >= SIGNAL_RATE) & (u < SIGNAL_RATE + SPECIAL_RATE)
    ids[special] = vocab.special_start + rng.integers(0, len(SPECIAL_WORDS), special.sum())
    return ids


def _add_non_ascii(
    rng: np.random.Generator, vocab: Vocabulary, ids: np.ndarray, lengths: np.ndarray
) -> None:
    """Replace one word of about ``NON_ASCII_DOCS`` of the documents by a non-ASCII word."""
    docs = np.flatnonzero(rng.random(len(lengths)) < NON_ASCII_DOCS)
    starts = np.cumsum(lengths) - lengths
    where = starts[docs] + (rng.random(len(docs)) * lengths[docs]).astype(np.int64)
    ids[where] = vocab.non_ascii_start + rng.integers(0, len(NON_ASCII_WORDS), len(docs))


def _draw_separators(rng: np.random.Generator, lengths: np.ndarray, sentences: bool) -> np.ndarray:
    """Separator after each word: space, comma, sentence end; a newline ends each document."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths) - 1
    if not sentences:
        seps = np.full(total, SEP_SPACE, dtype=np.int64)
        seps[ends] = SEP_NEWLINE
        return seps
    u = rng.random(total)
    end_kind = rng.choice(3, size=total, p=END_MIX)
    seps = np.where(u < COMMA, SEP_COMMA, SEP_SPACE)
    seps = np.where(u >= 1 - SENTENCE_END, SEP_PERIOD + end_kind, seps)
    seps[ends] = SEP_END_PERIOD + end_kind[ends]
    return seps


@dataclass(frozen=True)
class _Docs:
    """Documents as UTF-8 bytes, each ended by a newline, and where each one ends.

    Kept as bytes until written, so Python strings are made per written chunk
    only and are freed together (fewer long-lived small objects on the heap).
    """

    data: bytes
    ends: np.ndarray  # offset just past each document's newline

    def __len__(self) -> int:
        return len(self.ends)

    def __add__(self, other: _Docs) -> _Docs:
        ends = np.concatenate([self.ends, other.ends + len(self.data)])
        return _Docs(self.data + other.data, ends)

    def split(self, n: int) -> tuple[_Docs, _Docs]:
        """The first ``n`` documents and the rest."""
        cut = int(self.ends[n - 1]) if n else 0
        return _Docs(self.data[:cut], self.ends[:n]), _Docs(self.data[cut:], self.ends[n:] - cut)

    def texts(self) -> list[str]:
        """The documents as strings, without their newlines."""
        return self.data.decode("utf-8").split("\n")[:-1]


_NO_DOCS = _Docs(b"", np.zeros(0, dtype=np.int64))


def _render(vocab: Vocabulary, ids: np.ndarray, seps: np.ndarray) -> _Docs:
    """Join words and separators into documents (a separator with a newline ends one).

    Vectorized: every output byte is gathered from the blob in one indexing
    operation; the first letter of each sentence is upper-cased in place.
    """
    pieces = np.empty(2 * len(ids), dtype=np.int64)
    pieces[0::2] = ids
    pieces[1::2] = vocab.sep_start + seps
    lengths = vocab.lengths[pieces]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(ends[-1]) if len(ends) else 0
    src = np.arange(total) - np.repeat(starts - vocab.offsets[pieces], lengths)
    out = vocab.blob[src]
    capital = np.empty(len(ids), dtype=bool)
    capital[:1] = True
    capital[1:] = seps[:-1] >= SEP_PERIOD
    first = starts[0::2][capital]
    lower = (out[first] >= ord("a")) & (out[first] <= ord("z"))
    out[first[lower]] -= 32
    return _Docs(out.tobytes(), ends[1::2][seps >= SEP_END_PERIOD])


def _generate_block(
    config: CorpusConfig, vocab: Vocabulary, k: int, block: int
) -> tuple[_Docs, _Docs]:
    """Documents ``block * BLOCK_DOCS ..`` of class ``k``: texts, titles (empty if none).

    A pure function of ``(config.seed, k, block)`` and the shape settings.
    """
    rng = np.random.default_rng([config.seed, 1, k, block])
    lengths = _draw_lengths(rng, BLOCK_DOCS, config.words_per_doc)
    ids = _draw_words(rng, vocab, k, lengths)
    _add_non_ascii(rng, vocab, ids, lengths)
    texts = _render(vocab, ids, _draw_separators(rng, lengths, sentences=True))
    if not config.title:
        return texts, _NO_DOCS
    rng = np.random.default_rng([config.seed, 3, k, block])
    lengths = rng.integers(*TITLE_WORDS, BLOCK_DOCS).astype(np.int64)
    ids = _draw_words(rng, vocab, k, lengths)
    return texts, _render(vocab, ids, _draw_separators(rng, lengths, sentences=False))


class _ClassStream:
    """The documents of one class, in order, generated a block at a time."""

    def __init__(self, config: CorpusConfig, vocab: Vocabulary, k: int) -> None:
        self._args = (config, vocab, k)
        self._block = 0
        self._texts = self._titles = _NO_DOCS

    def take(self, n: int) -> tuple[list[str], list[str]]:
        """The next ``n`` documents of this class (texts, titles; titles empty if none)."""
        while len(self._texts) < n:
            texts, titles = _generate_block(*self._args, self._block)
            self._block += 1
            self._texts += texts
            self._titles += titles
        texts, self._texts = self._texts.split(n)
        titles, self._titles = self._titles.split(min(n, len(self._titles)))
        return texts.texts(), titles.texts()


# -- rows ------------------------------------------------------------------------------------


def iter_labels(config: CorpusConfig) -> Iterator[np.ndarray]:
    """Class index of every row in the default (unsorted) order, in chunks."""
    rng = np.random.default_rng([config.seed, 2])
    for start in range(0, config.docs, LABEL_CHUNK):
        n = min(LABEL_CHUNK, config.docs - start)
        yield rng.integers(0, config.classes, n).astype(np.int64)


def class_counts(config: CorpusConfig) -> np.ndarray:
    """Number of rows of each class (one cheap pass over the labels only)."""
    counts = np.zeros(config.classes, dtype=np.int64)
    for labels in iter_labels(config):
        counts += np.bincount(labels, minlength=config.classes)
    return counts


def _interleave(labels: np.ndarray, streams: list[_ClassStream], title: bool) -> Chunk:
    """Rows for ``labels``, each taking the next document of its class."""
    order = np.argsort(labels, kind="stable")
    texts = np.empty(len(labels), dtype=object)
    titles = np.empty(len(labels), dtype=object)
    counts = np.bincount(labels, minlength=len(streams))
    taken = [stream.take(int(c)) for stream, c in zip(streams, counts, strict=True)]
    texts[order] = [t for part, _ in taken for t in part]
    if title:
        titles[order] = [t for _, part in taken for t in part]
    return Chunk(labels, texts.tolist(), titles.tolist() if title else None)


def iter_chunks(config: CorpusConfig) -> Iterator[Chunk]:
    """Every row of the corpus, in order, in chunks of at most ``LABEL_CHUNK`` rows."""
    vocab = build_vocabulary(config)
    streams = [_ClassStream(config, vocab, k) for k in range(config.classes)]
    if not config.sorted_by_class:
        for labels in iter_labels(config):
            yield _interleave(labels, streams, config.title)
        return
    for k, count in enumerate(class_counts(config).tolist()):
        for start in range(0, count, LABEL_CHUNK):
            n = min(LABEL_CHUNK, count - start)
            texts, titles = streams[k].take(n)
            yield Chunk(np.full(n, k, dtype=np.int64), texts, titles if config.title else None)


def generate_docs(n: int, **options: Any) -> tuple[list[str], list[str | int]]:
    """``n`` documents in memory: ``(texts, labels)``. Options as :class:`CorpusConfig`."""
    config = CorpusConfig(docs=n, **options)
    names = config.class_names
    texts: list[str] = []
    labels: list[str | int] = []
    for chunk in iter_chunks(config):
        texts += chunk.texts
        labels += [names[k] for k in chunk.labels.tolist()]
    return texts, labels


def write_sample_corpus(path: str | os.PathLike[str], docs: int, seed: int = 0,
                        **options: Any) -> Path:
    """Write ``docs`` documents as CSV (header ``label,text``) to ``path``; return it.

    ``options`` are the other fields of :class:`CorpusConfig` (``classes``,
    ``words_per_doc``, ``vocab``, ...).  The file is written under a
    temporary name and renamed when complete, so an interrupted run leaves
    no corpus that looks finished.
    """
    config = CorpusConfig(docs=docs, seed=seed, **options)
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".partial")
    names = np.array(config.class_names, dtype=object)
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["label", "title", "text"] if config.title else ["label", "text"])
        for chunk in iter_chunks(config):
            labels = names[chunk.labels].tolist()
            columns = (labels, chunk.texts) if chunk.titles is None else (
                labels, chunk.titles, chunk.texts)
            writer.writerows(zip(*columns, strict=True))
    os.replace(tmp, final)
    return final
