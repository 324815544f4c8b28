"""Parity of the n-gram and sequence vectorizers with the guide's in-memory pipelines.

References: scikit-learn ``TfidfVectorizer(ngram_range=(1, 2), min_df=2,
strip_accents="unicode", decode_error="replace")`` + ``SelectKBest(f_classif, k)``,
and tf_keras ``Tokenizer(num_words=top_k)`` + ``pad_sequences(maxlen=min(longest,
max_length))``, each fitted on exactly the training rows of the dataset that
``ooc preprocess`` wrote (found through ``row_ids``), in source order; the
validation and test rows are only transformed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif

import ooc
from ooc.text.ngram_vectorizer import NgramVectorizer
from ooc.text.sequence_vectorizer import SequenceVectorizer

TOLERANCE = 1e-5
UNICODE_DOCS = [
    "Naïve café owners serve crème brûlée and a résumé of Ångström units.",
    "ÉCOLE NORMALE: élèves naïve, CAFÉ crème; über Straße STRASSE groß.",
    "The ﬁnance oﬃce (ligatures) pays x² and ½ of 10€ to İstanbul ΟΔΟΣ friends.",
    "Emoji 😀👍 and “curly quotes” — dashes… ★★★★★ 数据 中文 文本 test-case don't.",
    "Ελληνικά ΚΕΊΜΕΝΑ και ΣΊΣΥΦΟΣ, русский ТЕКСТ и ёлка; العربية نص hello wörld.",  # noqa: RUF001
    "tabs\tand\r\nCRLF\nlines   and  multiple    spaces; under_score _x 3rd 42 a1 b2.",
    "日本語のテキスト、ひらがなとカタカナ。東京タワーへ行きました！ 漢字仮名交じり文",  # noqa: RUF001
    "ｶﾀｶﾅ ＡＢＣ１２３ 中华人民共和国 繁體中文 ☕ 🇯🇵 👩‍👩‍👧 x²+y² ½",  # noqa: RUF001
    "İstanbul IĞDIR ılık ışık KIZ kız İi Iı; TÜRKÇE türkçe ŞEHİR şehir.",  # noqa: RUF001
    "ὈΔΥΣΣΕΎΣ ὀδυσσεύς λόγος ΛΌΓΟΣ σοφός ΣΟΦΌΣ'Σ Σ σ ς ΑΣ. x² y³ ½ ⅓ ① ﬁﬂ ŉ.",  # noqa: RUF001
    "A ! b ? c ... 1 2 3 -- I",  # no word of two characters: an empty row
]


# ----------------------------------------------------------------- corpus
def parity_corpus(textkit: Any, n: int = 3000) -> tuple[list[str], list[str]]:
    """A few thousand make_corpus documents plus hand-made non-ASCII ones (each 3 times)."""
    texts, labels = textkit.docs(n, seed=11, vocab=4000, words_per_doc=40, classes=4)
    assert sum(not t.isascii() for t in texts) >= n // 200  # make_corpus' non-ASCII docs
    for k, doc in enumerate(UNICODE_DOCS * 3):
        position = (k * 977) % len(texts)
        texts.insert(position, doc)
        labels.insert(position, f"class_{k % 4}")
    return texts, labels


def pick(values: list[Any], ids: np.ndarray) -> list[Any]:
    """``values`` at the given row ids."""
    return [values[i] for i in ids.tolist()]


# --------------------------------------------------------------- references
@dataclass
class NgramReference:
    """scikit-learn's pipeline fitted on the training texts."""

    tfidf: TfidfVectorizer
    select: SelectKBest
    names: list[str]

    def transform(self, texts: list[str]) -> scipy.sparse.csr_matrix:
        return self.select.transform(self.tfidf.transform(texts)).tocsr()

    @property
    def n_vocabulary(self) -> int:
        return len(self.tfidf.vocabulary_)


def ngram_reference(texts: list[str], labels: list[str], top_k: int, analyzer: str = "word",
                    ngram_range: tuple[int, int] = (1, 2), min_df: int = 2) -> NgramReference:
    """Fit ``TfidfVectorizer`` + ``SelectKBest(f_classif)`` as the guide does."""
    tfidf = TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, strip_accents="unicode",
                            decode_error="replace", analyzer=analyzer)
    x = tfidf.fit_transform(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant features: F is NaN
        select = SelectKBest(f_classif, k=min(top_k, x.shape[1])).fit(x, labels)
    names = list(select.get_feature_names_out(tfidf.get_feature_names_out()))
    return NgramReference(tfidf, select, names)


def assert_ngram_parity(ref: NgramReference, names: list[str],
                        pairs: list[tuple[Any, list[str]]]) -> None:
    """Exactly the selected n-grams of the reference, in its order (ties at the k-th
    score broken as ``SelectKBest`` breaks them), and ``x`` of each ``(x, texts)``
    pair within TOLERANCE of the reference."""
    names = list(names)
    assert names == sorted(names)  # output columns in n-gram string order, as scikit-learn's
    assert names == ref.names
    common = sorted(set(names) & set(ref.names))
    ours_at = {n: i for i, n in enumerate(names)}
    ref_at = {n: i for i, n in enumerate(ref.names)}
    mine_cols = [ours_at[n] for n in common]
    ref_cols = [ref_at[n] for n in common]
    for x, texts in pairs:
        x = scipy.sparse.csr_matrix(x)
        assert x.dtype == np.float32
        expected = ref.transform(texts)
        assert x.shape == expected.shape
        got = x[:, mine_cols].astype(np.float64)
        diff = abs(got - expected[:, ref_cols].astype(np.float32).astype(np.float64))
        assert diff.max() <= TOLERANCE


@pytest.fixture(scope="module")
def keras() -> Any:
    """tf_keras' Tokenizer and pad_sequences (TensorFlow is imported once, here)."""
    text = pytest.importorskip("tf_keras.preprocessing.text")
    sequence = pytest.importorskip("tf_keras.preprocessing.sequence")
    return text.Tokenizer, sequence.pad_sequences


def keras_reference(keras: Any, train: list[str], others: list[list[str]], top_k: int,
                    max_length: int) -> tuple[Any, int, list[np.ndarray]]:
    """The guide's sequence pipeline: (tokenizer, longest train sequence, padded arrays)."""
    tokenizer_cls, pad_sequences = keras
    tokenizer = tokenizer_cls(num_words=top_k)
    tokenizer.fit_on_texts(train)
    sequences = [tokenizer.texts_to_sequences(t) for t in [train, *others]]
    longest = max(len(s) for s in sequences[0])
    maxlen = min(longest, max_length)
    return tokenizer, longest, [pad_sequences(s, maxlen=maxlen) for s in sequences]


def keras_words(tokenizer: Any, top_k: int) -> list[str]:
    """The words a Keras tokenizer with ``num_words=top_k`` keeps, by index."""
    n = min(top_k - 1, len(tokenizer.index_word))
    return [tokenizer.index_word[i] for i in range(1, n + 1)]


# ------------------------------------------------------------ through preprocess
def read_splits(textkit: Any, out: str = "out.h5") -> tuple[Any, Any, Any]:
    """(dataset, train, val) with splits ordered by row id."""
    ds = textkit.load(out)
    return ds, ds.splits["train"].by_row_id(), ds.splits["val"].by_row_id()


def check_labels(ds: Any, split: Any, labels: list[str]) -> None:
    assert ds.classes == sorted(set(labels))
    assert [ds.classes[c] for c in split.y.tolist()] == pick(labels, split.row_ids)


@pytest.mark.parametrize(("analyzer", "top_k"), [("word", 3000), ("char", 500)])
def test_preprocess_ngram_matches_sklearn(textkit, analyzer, top_k):
    texts, labels = parity_corpus(textkit)
    path = textkit.write_csv("corpus.csv", texts, labels)
    textkit.preprocess(path, analyzer=analyzer, top_k=top_k, chunk_rows=700)
    ds, train, val = read_splits(textkit)
    all_ids = np.concatenate([train.row_ids, val.row_ids])
    np.testing.assert_array_equal(np.sort(all_ids), np.arange(len(texts)))
    assert 0.1 < len(val.row_ids) / len(texts) < 0.3
    check_labels(ds, train, labels)
    check_labels(ds, val, labels)

    ref = ngram_reference(pick(texts, train.row_ids), pick(labels, train.row_ids), top_k,
                          analyzer)
    assert top_k < ref.n_vocabulary  # the selection matters
    assert any(not name.isascii() for name in ref.tfidf.vocabulary_)  # non-ASCII n-grams
    assert_ngram_parity(ref, ds.feature_names, [(train.x, pick(texts, train.row_ids)),
                                                (val.x, pick(texts, val.row_ids))])
    # the stored vectorizer vectorizes texts like the stored rows
    stored = ds.vectorizer
    assert list(stored.get_feature_names_out()) == ds.feature_names
    again = stored.transform(pick(texts, val.row_ids))
    assert abs(again - val.x).max() <= TOLERANCE


@pytest.mark.parametrize("max_length", [500, 12])
def test_preprocess_sequence_matches_keras(textkit, keras, max_length):
    texts, labels = parity_corpus(textkit, n=2000)
    path = textkit.write_csv("corpus.csv", texts, labels)
    top_k = 800
    textkit.preprocess(path, vectorizer="sequence", top_k=top_k, max_length=max_length)
    ds, train, val = read_splits(textkit)
    check_labels(ds, train, labels)
    train_texts, val_texts = pick(texts, train.row_ids), pick(texts, val.row_ids)
    tokenizer, longest, (x_train, x_val) = keras_reference(keras, train_texts, [val_texts],
                                                           top_k, max_length)
    assert len(tokenizer.word_index) > top_k  # out-of-vocabulary words are dropped
    if max_length < 500:
        assert longest > max_length  # the truncation case really truncates
    else:
        assert longest < max_length
    assert train.x.dtype == np.int32
    np.testing.assert_array_equal(train.x, x_train)
    np.testing.assert_array_equal(val.x, x_val)
    vec = ds.vectorizer
    assert vec.words == keras_words(tokenizer, top_k)
    np.testing.assert_array_equal(vec.transform(val_texts), x_val)


def test_preprocess_ngram_with_a_test_split_matches_sklearn_fitted_on_train(textkit):
    texts, labels = parity_corpus(textkit, n=1500)
    path = textkit.write_csv("corpus.csv", texts, labels)
    textkit.preprocess(path, top_k=1000, val_split=0.15, test_split=0.25, chunk_rows=400)
    ds = textkit.load("out.h5")
    train, val, test = (ds.splits[s].by_row_id() for s in ("train", "val", "test"))
    assert 0.2 < len(test.row_ids) / len(texts) < 0.3
    check_labels(ds, test, labels)
    # fitted on the training rows alone, as the guide fits on its training set
    ref = ngram_reference(pick(texts, train.row_ids), pick(labels, train.row_ids), 1000)
    assert_ngram_parity(ref, ds.feature_names, [(train.x, pick(texts, train.row_ids)),
                                                (val.x, pick(texts, val.row_ids)),
                                                (test.x, pick(texts, test.row_ids))])
    # and not on training plus test rows (the two fits differ on this corpus)
    fit_ids = np.sort(np.concatenate([train.row_ids, test.row_ids]))
    leaky = ngram_reference(pick(texts, fit_ids), pick(labels, fit_ids), 1000)
    assert leaky.names != ref.names


def test_preprocess_sequence_with_test_inputs_matches_keras_fitted_on_train(textkit, keras):
    texts, labels = parity_corpus(textkit, n=1200)
    train_path = textkit.write_csv("train.csv", texts[:1000], labels[:1000])
    test_texts = texts[1000:]
    test_path = textkit.write_csv("test.csv", test_texts, labels[1000:])
    textkit.preprocess(train_path, vectorizer="sequence", top_k=500, max_length=40,
                       test_inputs=(str(test_path),), format="npy", out="seq")
    ds = textkit.load("seq")
    train, val, test = (ds.splits[s].by_row_id() for s in ("train", "val", "test"))
    tokenizer, _, (x_train, x_val, x_test) = keras_reference(
        keras, pick(texts, train.row_ids), [pick(texts, val.row_ids), test_texts], 500, 40)
    assert ds.vectorizer.words == keras_words(tokenizer, 500)
    np.testing.assert_array_equal(train.x, x_train)
    np.testing.assert_array_equal(val.x, x_val)
    np.testing.assert_array_equal(test.row_ids, np.arange(len(test_texts)))
    np.testing.assert_array_equal(test.x, x_test)


# ---------------------------------------------------------------- used directly
def chunked(texts: list[str], labels: list[str], size: int) -> list[tuple[list[str], list[str]]]:
    return [(texts[i:i + size], labels[i:i + size]) for i in range(0, len(texts), size)]


@pytest.mark.parametrize(("analyzer", "ngram_range", "min_df", "top_k"), [
    ("word", (1, 2), 2, 1500), ("char", (1, 2), 2, 300), ("word", (1, 1), 3, 500),
    ("word", (2, 2), 2, 800), ("char", (1, 3), 4, 1200), ("char", (3, 3), 2, 600)])
def test_ngram_vectorizer_fit_transform_matches_sklearn(textkit, analyzer, ngram_range, min_df,
                                                        top_k):
    texts, labels = parity_corpus(textkit, n=1200)
    fit_texts, new_texts = texts[:1000], texts[1000:]
    vec = NgramVectorizer(top_k=top_k, analyzer=analyzer, ngram_range=ngram_range,
                          min_df=min_df)
    assert vec.fit(chunked(fit_texts, labels[:1000], 128)) is vec
    ref = ngram_reference(fit_texts, labels[:1000], top_k, analyzer, ngram_range, min_df)
    assert top_k < ref.n_vocabulary
    assert vec.classes_ == sorted(set(labels[:1000]))
    assert_ngram_parity(ref, list(vec.get_feature_names_out()),
                        [(vec.transform(fit_texts), fit_texts),
                         (vec.transform(new_texts), new_texts)])


def test_ngram_vectorizer_fit_accepts_a_callable_and_round_trips(textkit):
    texts, labels = textkit.docs(600, seed=3)
    chunks = chunked(texts, labels, 100)
    from_list = NgramVectorizer(top_k=400).fit(chunks)
    from_callable = NgramVectorizer(top_k=400).fit(lambda: iter(chunks))
    names = list(from_list.get_feature_names_out())
    assert names == list(from_callable.get_feature_names_out())
    restored = NgramVectorizer.from_arrays(*from_list.to_arrays())
    assert list(restored.get_feature_names_out()) == names
    a, b = from_list.transform(texts[:50]), restored.transform(texts[:50])
    assert (a != b).nnz == 0


def test_ngram_vectorizer_unknown_words_and_empty_texts(textkit):
    texts, labels = textkit.docs(300, seed=4)
    vec = NgramVectorizer(top_k=200).fit(chunked(texts, labels, 64))
    x = vec.transform(["", "zzzqqq xxyyzz never seen", "!!! ..."])
    assert x.shape == (3, 200) and x.nnz == 0 and x.dtype == np.float32


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_unfitted_ngram_vectorizer_says_so(analyzer):
    with pytest.raises(ValueError, match="not fitted"):
        NgramVectorizer(analyzer=analyzer).transform(["a text"])


def test_unfitted_sequence_vectorizer_says_so():
    with pytest.raises(ValueError, match="not fitted"):
        SequenceVectorizer().transform(["a text"])


@pytest.mark.parametrize(("top_k", "max_length"), [(300, 500), (50, 9)])
def test_sequence_vectorizer_fit_transform_matches_keras(textkit, keras, top_k, max_length):
    texts, labels = parity_corpus(textkit, n=800)
    fit_texts, new_texts = texts[:700], texts[700:]
    vec = SequenceVectorizer(top_k=top_k, max_length=max_length)
    assert vec.fit(chunked(fit_texts, labels[:700], 96)) is vec
    tokenizer, _, (x_fit, x_new) = keras_reference(keras, fit_texts, [new_texts], top_k,
                                                   max_length)
    assert vec.words == keras_words(tokenizer, top_k)
    assert vec.length == x_fit.shape[1]
    np.testing.assert_array_equal(vec.transform(fit_texts), x_fit)
    np.testing.assert_array_equal(vec.transform(new_texts), x_new)
    restored = SequenceVectorizer.from_arrays(*vec.to_arrays())
    np.testing.assert_array_equal(restored.transform(new_texts), x_new)


def test_sequence_vectorizer_ties_follow_first_appearance(keras):
    # every word appears once: Keras ranks them by first appearance, in source order
    texts = ["delta alpha", "charlie bravo alpha", "echo delta"]
    vec = SequenceVectorizer(top_k=10).fit([(texts[:2], ["a", "b"]), (texts[2:], ["a"])])
    tokenizer, _, (x,) = keras_reference(keras, texts, [], 10, 500)
    assert vec.words == keras_words(tokenizer, 10) == ["delta", "alpha", "charlie", "bravo",
                                                       "echo"]
    np.testing.assert_array_equal(vec.transform(texts), x)


def write_both_vectorizers(textkit, n: int, seed: int, top_k: tuple[int, int]) -> list[str]:
    """Preprocess one corpus to ``ngram.h5`` and ``seq.h5``; return its texts."""
    texts, labels = textkit.docs(n, seed=seed)
    path = textkit.write_csv("c.csv", texts, labels)
    textkit.preprocess(path, top_k=top_k[0], out="ngram.h5")
    textkit.preprocess(path, vectorizer="sequence", top_k=top_k[1], out="seq.h5")
    return texts


def test_opened_dataset_vectorizer_transforms_new_texts_like_stored_rows(textkit):
    texts = write_both_vectorizers(textkit, 1500, seed=5, top_k=(1000, 500))
    for out in ("ngram.h5", "seq.h5"):
        with ooc.open(textkit.tmp_path / out) as ds:
            vec = ds.vectorizer
            for split in ds.splits.values():
                x, ids = split.x[0:200], np.asarray(split.row_ids[0:200])
                got = vec.transform(pick(texts, ids))
                if scipy.sparse.issparse(x):
                    assert got.dtype == np.float32 and got.shape == x.shape
                    assert abs(got - x).max() <= TOLERANCE
                else:
                    np.testing.assert_array_equal(got, x)


def test_ngram_vectorizer_conventions_match_sklearn(textkit):
    """get_feature_names_out, vocabulary_, idf_ and fit_transform as scikit-learn's pipeline."""
    texts, labels = parity_corpus(textkit, n=800)
    vec = NgramVectorizer(top_k=500)
    x = vec.fit_transform(chunked(texts, labels, 128))
    ref = ngram_reference(texts, labels, 500)
    names = list(vec.get_feature_names_out())
    assert names == ref.names and vec.vocabulary_ == {n: i for i, n in enumerate(ref.names)}
    ref_idf = ref.tfidf.idf_[[ref.tfidf.vocabulary_[n] for n in ref.names]]
    np.testing.assert_allclose(vec.idf_, ref_idf, rtol=1e-12)
    assert_ngram_parity(ref, names, [(x, texts)])


def test_saved_vectorizers_load_on_their_own_and_transform_the_same(textkit):
    texts = write_both_vectorizers(textkit, 1200, seed=6, top_k=(800, 400))
    for out in ("ngram.h5", "seq.h5"):
        with ooc.open(textkit.tmp_path / out) as ds:
            vec = ds.vectorizer
            assert ds.vectorizer is vec  # built once per open dataset
            saved = vec.save(textkit.tmp_path / f"{out}.vec")
        assert saved.name == f"{out}.vec.npz" and not list(saved.parent.glob(".*tmp*"))
        loaded = ooc.load_vectorizer(saved)
        assert type(loaded) is type(vec) and loaded.classes_ == vec.classes_
        assert list(loaded.get_feature_names_out()) == list(vec.get_feature_names_out())
        a, b = vec.transform(texts[:300]), loaded.transform(texts[:300])
        if scipy.sparse.issparse(a):
            a, b = a.toarray(), b.toarray()
        np.testing.assert_array_equal(a, b)


def test_damaged_saved_vectorizer_is_refused(textkit):
    texts, labels = textkit.docs(300, seed=7)
    saved = NgramVectorizer(top_k=100).fit(chunked(texts, labels, 100)).save(
        textkit.tmp_path / "vec.npz")
    with np.load(saved) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    arrays["array/selected_idf"][0] += 1.0  # a well-formed file whose contents changed
    np.savez(textkit.tmp_path / "changed.npz", **arrays)
    with pytest.raises(ooc.VectorizerFileError, match="checksum does not match"):
        ooc.load_vectorizer(textkit.tmp_path / "changed.npz")
    truncated = textkit.tmp_path / "truncated.npz"
    truncated.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(ooc.VectorizerFileError, match="not a readable ooc vectorizer"):
        ooc.load_vectorizer(truncated)
    np.savez(textkit.tmp_path / "other.npz", header=np.frombuffer(b'{"a": 1}', np.uint8))
    with pytest.raises(ooc.VectorizerFileError, match="expected an ooc-vectorizer file"):
        ooc.load_vectorizer(textkit.tmp_path / "other.npz")


def test_ngram_vectorizer_selects_like_sklearn_with_hundreds_of_classes(textkit):
    """Class ids past 127 must not wrap (they once travelled as int8)."""
    texts, _ = parity_corpus(textkit, n=1200)
    labels = [f"c{i % 300:03d}" for i in range(len(texts))]
    vec = NgramVectorizer(top_k=600).fit(chunked(texts, labels, 256))
    ref = ngram_reference(texts, labels, 600)
    assert len(vec.classes_) == 300
    assert_ngram_parity(ref, list(vec.get_feature_names_out()),
                        [(vec.transform(texts[:200]), texts[:200])])
