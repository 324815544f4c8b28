"""The compiled kernels (numba) give exactly what their NumPy fallbacks give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ooc.text import kernels, ngrams
from ooc.text.counts import sum_counts
from ooc.text.hashindex import HashIndex
from ooc.text.ngrams import KeySpace
from ooc.text.vocab import PackedWords

pytest.importorskip("numba")
pytestmark = pytest.mark.skipif(not kernels.compiled(), reason="kernels not compiled here")


def both(monkeypatch: pytest.MonkeyPatch, call) -> tuple:
    """``call()`` with the compiled kernels, then with the NumPy fallbacks."""
    compiled = call()
    with monkeypatch.context() as m:
        m.setattr(kernels, "compiled", lambda: False)
        fallback = call()
    return compiled, fallback


def assert_same(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x, np.int64) if x.dtype != np.uint64 else x,
                                      np.asarray(y, np.int64) if y.dtype != np.uint64 else y)


rows_of_ids = st.lists(st.lists(st.integers(-1, 40), max_size=30), max_size=25)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=rows_of_ids, ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 2), (1, 3), (2, 3)]),
       masked=st.booleans(), seed=st.integers(0, 99))
def test_term_counts_and_document_frequencies(monkeypatch, docs, ngram_range, masked, seed):
    space = KeySpace(ngram_range, 21)
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    rows = np.random.default_rng(seed).random(len(docs)) < 0.6 if masked else None
    assert_same(*both(monkeypatch, lambda: ngrams.term_counts(space, ids, offsets, rows)))
    assert_same(*map(by_key, both(monkeypatch,
                                  lambda: ngrams.document_frequencies(space, ids, offsets,
                                                                      rows))))


def first_occurrence_counts(docs: list[list[int]], ngram_range: tuple[int, int],
                            rows: np.ndarray | None) -> list[tuple[int, tuple[int, ...], int]]:
    """``(row, n-gram, count)`` in plain Python: each row's n-grams (lowest order first,
    then by position, none through an unknown token) in order of first occurrence."""
    out = []
    for d, doc in enumerate(docs):
        if rows is not None and not rows[d]:
            continue
        counts: dict[tuple[int, ...], int] = {}
        for n in range(ngram_range[0], ngram_range[1] + 1):
            for p in range(len(doc) - n + 1):
                gram = tuple(doc[p:p + n])
                if min(gram) >= 0:
                    counts[gram] = counts.get(gram, 0) + 1
        out += [(d, gram, c) for gram, c in counts.items()]
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=rows_of_ids, ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 3)]),
       masked=st.booleans(), seed=st.integers(0, 99))
def test_term_counts_list_each_row_in_order_of_first_occurrence(monkeypatch, docs, ngram_range,
                                                                masked, seed):
    # the row norms are summed in this order: it must not depend on the kernel
    space = KeySpace(ngram_range, 21)
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    rows = np.random.default_rng(seed).random(len(docs)) < 0.6 if masked else None
    expected = first_occurrence_counts(docs, ngram_range, rows)
    for row, key, count in both(monkeypatch, lambda: ngrams.term_counts(space, ids, offsets,
                                                                        rows)):
        got = list(zip(row.tolist(), space.decode(key), count.tolist(), strict=True))
        assert got == expected


def encode_both_ways(monkeypatch: pytest.MonkeyPatch, words: list[str]) -> tuple:
    """Dictionary-encode ``words`` (joined by spaces) compiled and with the fallback;
    check both give ids in order of first appearance and the kernel's hashes; the
    compiled result."""
    from ooc.text.tokenize import _dictionary_encode

    data = np.frombuffer(" ".join(words).encode(), np.uint8)
    lengths = np.array([len(w.encode()) for w in words], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)])[:len(words)].astype(np.int64)
    compiled, fallback = both(monkeypatch, lambda: _dictionary_encode(data, starts,
                                                                      starts + lengths))
    np.testing.assert_array_equal(compiled[0], fallback[0])
    assert strings(compiled[1]) == fallback[1] == list(dict.fromkeys(words))
    np.testing.assert_array_equal(compiled[1].hashes, kernels.hash_words(compiled[1].utf8,
                                                                         compiled[1].offsets))
    return compiled


def strings(words: PackedWords | list[str]) -> list[str]:
    """Words as ``str`` (the compiled tokenizer packs them)."""
    return words.strings() if isinstance(words, PackedWords) else words


def by_key(pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and their values, sorted by key (the kernels may give any order)."""
    keys, values = pairs
    assert len(np.unique(keys)) == len(keys)
    order = np.argsort(keys)
    return keys[order], values[order]


def test_term_counts_of_a_real_sized_chunk(monkeypatch):
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 300, 500)
    ids = rng.zipf(1.3, lengths.sum()).astype(np.int64) % 50_000
    ids[rng.random(len(ids)) < 0.01] = -1  # unknown tokens
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    space = KeySpace((1, 2), 25)
    compiled, fallback = both(monkeypatch, lambda: ngrams.term_counts(space, ids, offsets))
    assert len(compiled[0]) > 50_000
    assert_same(compiled, fallback)
    train = rng.random(len(lengths)) < 0.8
    assert_same(*map(by_key, both(monkeypatch, lambda: ngrams.document_frequencies(
        space, ids, offsets, train))))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.sets(st.integers(1, 2**64 - 1), max_size=300),
       absent=st.lists(st.integers(1, 2**64 - 1), max_size=100))
def test_hash_index_lookup(monkeypatch, keys, absent):
    stored = np.array(sorted(keys), dtype=np.uint64)
    index = HashIndex.build(stored)
    queries = np.array(list(keys)[::2] + absent, dtype=np.uint64)
    compiled, fallback = both(monkeypatch, lambda: index.lookup(queries))
    np.testing.assert_array_equal(compiled, fallback)
    found = compiled >= 0
    np.testing.assert_array_equal(stored[compiled[found]], queries[found])


def test_add_squares_adds_in_np_add_at_order(monkeypatch):
    rng = np.random.default_rng(4)
    at = rng.integers(0, 50, 20_000)
    values = rng.random(20_000) * 10.0 ** rng.integers(-8, 8, 20_000)  # order shows in the sums

    def add() -> tuple:
        sums, sumsq = np.zeros(50), np.zeros(50)
        kernels.add_squares(sums, sumsq, at, values)
        return sums, sumsq

    compiled, fallback = both(monkeypatch, add)
    assert compiled[0].tobytes() == fallback[0].tobytes()
    assert compiled[1].tobytes() == fallback[1].tobytes()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.lists(st.integers(0, 9), max_size=200), extra=st.integers(0, 3))
def test_group_order_is_a_stable_sort_with_bounds(monkeypatch, groups, extra):
    values = np.array(groups, dtype=np.int64)
    compiled, fallback = both(monkeypatch, lambda: kernels.group_order(values, 10 + extra))
    assert_same(compiled, fallback)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(["a", "ab", "ba", "é", "数据", "😀", "abc", "x" * 40]),
                      max_size=120))
def test_dictionary_encoding_gives_ids_in_order_of_first_appearance(monkeypatch, words):
    encode_both_ways(monkeypatch, words)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(0, 40), max_size=200), seed=st.integers(0, 2**32 - 1),
       ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 3), (1, 2)]))
def test_remap_keys(monkeypatch, ids, seed, ngram_range):
    space = KeySpace(ngram_range, 21)
    token_ids = np.array(ids, dtype=np.int64)
    keys, _ = space.keys(ngrams.Tokens(token_ids, np.array([0, len(ids)]), None))
    mapping = np.random.default_rng(seed).permutation(space.max_token + 1)[:41]
    compiled, fallback = both(monkeypatch, lambda: space.remap(keys, mapping))
    np.testing.assert_array_equal(compiled, fallback)
    # the same keys as made from the mapped ids
    np.testing.assert_array_equal(compiled, space.keys(
        ngrams.Tokens(mapping[token_ids], np.array([0, len(ids)]), None))[0])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.integers(0, 2**64 - 1), max_size=300),
       repeats=st.integers(1, 40), seed=st.integers(0, 99))
def test_sum_counts(monkeypatch, keys, repeats, seed):
    rng = np.random.default_rng(seed)
    # every key several times, shuffled, with counts (some negative)
    values = np.repeat(np.array(keys, dtype=np.uint64), rng.integers(1, repeats + 1, len(keys)))
    values = values[rng.permutation(len(values))]
    counts = rng.integers(-3, 1000, len(values))
    compiled, fallback = both(monkeypatch, lambda: sum_counts(values, counts))
    assert_same(compiled, fallback)
    assert np.all(fallback[0][1:] > fallback[0][:-1])  # sorted, each key once
    unsorted = both(monkeypatch, lambda: sum_counts(values, counts, sort=False))
    assert_same(*map(by_key, unsorted))
    assert_same(by_key(unsorted[0]), fallback)


def test_sum_counts_of_a_large_array_with_many_partitions(monkeypatch):
    # more than 2**12 * 2k keys: the largest number of partitions, many keys each
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 3_000_000, 9_000_000).astype(np.uint64) << np.uint64(20)
    counts = rng.integers(1, 5, len(keys))
    compiled, fallback = both(monkeypatch, lambda: sum_counts(keys, counts))
    assert len(compiled[0]) > 2_500_000
    assert_same(compiled, fallback)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=rows_of_ids, ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 2), (1, 3)]),
       seed=st.integers(0, 99))
def test_indexed_term_counts_are_the_term_counts_the_index_holds(monkeypatch, docs,
                                                                 ngram_range, seed):
    space = KeySpace(ngram_range, 21)
    ids = np.array([t for d in docs for t in d], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    row, key, count = ngrams.term_counts(space, ids, offsets)
    rng = np.random.default_rng(seed)
    held = np.unique(key)[rng.random(len(np.unique(key))) < 0.5]  # about half the n-grams
    held = held[rng.permutation(len(held))]  # positions in no particular key order
    index = HashIndex.build(held)
    compiled, fallback = both(monkeypatch,
                              lambda: ngrams.indexed_term_counts(space, ids, offsets, index))
    assert_same(compiled, fallback)
    # the same pairs as term_counts, where the index holds the key, sorted by row then position
    expected = {(r, int(np.flatnonzero(held == k)[0])): c
                for r, k, c in zip(row.tolist(), key.tolist(), count.tolist(), strict=True)
                if k in set(held.tolist())}
    got = list(zip(compiled[0].tolist(), compiled[1].tolist(), strict=True))
    assert got == sorted(expected)
    assert compiled[2].tolist() == [expected[p] for p in got]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 400), seed=st.integers(0, 99))
def test_shard_hits(monkeypatch, n, seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(1, 500, n).astype(np.uint64)
    held = np.unique(keys)[rng.random(len(np.unique(keys))) < 0.5]
    index = HashIndex.build(held[rng.permutation(len(held))])
    idf = rng.random(len(held)) * 5
    tf = rng.integers(1, 9, n)
    rows = np.sort(rng.integers(0, 40, n))
    train = rng.random(n) < 0.7
    at = np.sort(rng.choice(n, rng.integers(0, n + 1), replace=False)).astype(np.int64)

    def hits() -> tuple:
        squares = np.zeros(n)
        return (*kernels.shard_hits(keys, tf, rows, train, at, index, idf, squares), squares)

    compiled, fallback = both(monkeypatch, hits)
    for x, y in zip(compiled, fallback, strict=True):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    found = index.lookup(keys[at]) >= 0
    assert len(compiled[0]) == int((found & train[at]).sum())
    assert np.count_nonzero(compiled[3]) == int(found.sum())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.sets(st.integers(1, 2**64 - 1), max_size=300),
       absent=st.lists(st.integers(1, 2**64 - 1), max_size=100))
def test_hash_index_build(monkeypatch, keys, absent):
    stored = np.array(list(keys), dtype=np.uint64)
    compiled, fallback = both(monkeypatch, lambda: HashIndex.build(stored))
    assert compiled.bits == fallback.bits and 2 * len(keys) <= len(compiled.slots_keys)
    queries = np.array([*keys, *absent], dtype=np.uint64)
    for index in (compiled, fallback):  # each index gives every key its position
        np.testing.assert_array_equal(
            index.lookup(queries), [{k: i for i, k in enumerate(keys)}.get(q, -1)
                                    for q in queries.tolist()])


def test_dictionary_encoding_of_many_distinct_words(monkeypatch):
    # enough distinct words for the table to grow many times, and words sharing hashes'
    # low bits; ids in order of first appearance, as the NumPy fallback gives them
    rng = np.random.default_rng(6)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzé数"))
    vocab = ["".join(rng.choice(letters, rng.integers(1, 12))) for _ in range(60_000)]
    words = [vocab[i] for i in rng.zipf(1.2, 200_000) % len(vocab)]
    compiled = encode_both_ways(monkeypatch, words)
    assert len(compiled[1]) > 20_000


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.integers(0, 2**64 - 1), max_size=200), level=st.integers(0, 3),
       bits=st.sampled_from([1, 4, 8]))
def test_partitions(monkeypatch, keys, level, bits):
    from ooc.text.counts import _partition

    values = np.array(keys, dtype=np.uint64)
    compiled, fallback = both(monkeypatch, lambda: _partition(values, level, bits))
    assert compiled.dtype == fallback.dtype == np.intp
    np.testing.assert_array_equal(compiled, fallback)


def test_token_table_of_packed_words_grows_and_keeps_first_appearance_order(monkeypatch):
    from ooc.text.vocab import TokenTable, unpack_strings

    rng = np.random.default_rng(7)
    letters = np.array(list("abcdé数😀\ud800"))  # a lone surrogate too, as text can hold
    vocab = ["".join(rng.choice(letters, rng.integers(1, 9))) for _ in range(30_000)]

    def run() -> tuple:
        table, seen, got = TokenTable(), {}, []
        for _ in range(6):
            chunk = [vocab[i] for i in rng.zipf(1.1, 20_000) % len(vocab)]
            local = list(dict.fromkeys(chunk))  # a chunk's dictionary, as tokenizers give it
            before = len(table)
            ids = table.add(PackedWords.of(local) if kernels.compiled() else local)
            for word in local:
                seen.setdefault(word, len(seen))
            assert ids.tolist() == [seen[w] for w in local]
            new = table.packed(before)
            assert unpack_strings(new["utf8"], new["offsets"]) == list(seen)[before:]
            got.append(ids)
        assert table.words == list(seen)
        assert table.lookup(["zz", *list(seen)[:50]]).tolist() == [-1, *range(50)]
        return tuple(got)

    rng = np.random.default_rng(8)
    compiled = run()
    rng = np.random.default_rng(8)
    with monkeypatch.context() as m:
        m.setattr(kernels, "compiled", lambda: False)
        fallback = run()
    assert_same(compiled, fallback)
    assert len(compiled[-1]) > 5_000


def test_token_table_tells_words_apart_when_every_hash_collides():
    # the hash only finds a slot; words are told apart by their bytes, so forced
    # collisions (every word given the same 64-bit hash) still give exact ids
    from ooc.text.vocab import TokenTable

    words = ["a", "b", "ab", "ba", "é", "数据", "a"]
    packed = PackedWords.of(words)
    colliding = PackedWords(packed.utf8, packed.offsets, np.zeros(len(words), np.uint64))
    table = TokenTable()
    assert table.add(colliding).tolist() == [0, 1, 2, 3, 4, 5, 0]
    query = PackedWords.of(["ba", "zz", "数据"])
    assert table.lookup(PackedWords(query.utf8, query.offsets, np.zeros(3, np.uint64))
                        ).tolist() == [3, -1, 5]
    assert table.words == ["a", "b", "ab", "ba", "é", "数据"]


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
                     max_size=8),
       analyzer=st.sampled_from(["word", "keras"]))
def test_token_runs_compiled_and_fallback(monkeypatch, docs, analyzer):
    # any code point, lone surrogates too, and the lazily filled \w table
    from ooc.text.tokenize import tokenize

    options = {"strip_accents": None} if analyzer == "word" else {}
    compiled, fallback = both(monkeypatch, lambda: tokenize(docs, analyzer, **options))
    np.testing.assert_array_equal(compiled.ids, fallback.ids)
    np.testing.assert_array_equal(compiled.offsets, fallback.offsets)
    assert compiled.strings() == fallback.strings()
