"""The compiled kernels of :mod:`ooc.text.kernels` (imported only where numba is).

Defined at module level so that numba's on-disk cache finds them again in
every process (functions made inside a function are compiled anew).
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True)


@jit
def ngram_sizes(offsets: np.ndarray, lo: int, hi: int, rows: np.ndarray) -> tuple[int, int]:
    # n-grams of all documents (where rows, when given), and the most in one document
    total, most = 0, 0
    for d in range(len(offsets) - 1):
        if len(rows) and not rows[d]:
            continue
        m = 0
        for n in range(lo, hi + 1):
            m += max(0, offsets[d + 1] - offsets[d] - n + 1)
        total += m
        most = max(most, m)
    return total, most


@jit
def doc_ngrams(ids: np.ndarray, a: int, b: int, lo: int, hi: int, shift: np.uint64,
               buf: np.ndarray) -> int:
    # the keys of the n-grams of ids[a:b] into buf, lowest order first; how many
    m = 0
    for n in range(lo, hi + 1):
        for p in range(a, b - n + 1):
            key = np.uint64(0)
            for j in range(n):
                t = ids[p + j]
                if t < 0:  # an unknown token: no n-gram through it
                    break
                key = (key << shift) | np.uint64(t + 1)
            else:
                buf[m] = key
                m += 1
    return m


@jit
def count_runs(part: np.ndarray, d: int, out_doc: np.ndarray, out_value: np.ndarray,
               out_count: np.ndarray, k: int) -> int:
    # part sorted in place; each distinct value written at k on as (d, value, count)
    part.sort()
    i = 0
    while i < len(part):
        j = i + 1
        while j < len(part) and part[j] == part[i]:
            j += 1
        out_doc[k], out_value[k], out_count[k] = d, part[i], j - i
        k += 1
        i = j
    return k


@jit
def doc_set(most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.uint64]:
    # an empty hash set for the distinct keys of one document of at most `most` n-grams:
    # (keys, where each key's entry is, slots filled, mask); 0 marks empty (n-gram keys
    # are never 0)
    bits = 4
    while (1 << bits) < 2 * most:
        bits += 1
    return (np.zeros(1 << bits, np.uint64), np.empty(1 << bits, np.int64),
            np.empty(max(most, 1), np.int64), np.uint64((1 << bits) - 1))


@jit
def distinct_in_doc(buf: np.ndarray, m: int, seen: np.ndarray, entry: np.ndarray,
                    filled: np.ndarray, mask: np.uint64, out_key: np.ndarray,
                    out_count: np.ndarray, k: int) -> int:
    # the distinct keys of buf[:m] appended at k on in order of first occurrence (with
    # how often each occurs, when out_count is not empty); the set emptied again; the
    # new k.  A small hash set per document: a sort of its keys took three times longer
    first = k
    count = len(out_count) > 0
    for i in range(m):
        key = buf[i]
        s = splitmix64(key) & mask
        while seen[s] != 0 and seen[s] != key:
            s = (s + np.uint64(1)) & mask
        if seen[s] == 0:
            seen[s], entry[s], filled[k - first] = key, k, s
            out_key[k] = key
            if count:
                out_count[k] = 1
            k += 1
        elif count:
            out_count[entry[s]] += 1
    for i in range(k - first):
        seen[filled[i]] = 0
    return k


@jit
def term_counts(ids: np.ndarray, offsets: np.ndarray, lo: int, hi: int, bits: int,
                rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # each document's n-gram keys made in a buffer and counted in a small hash set
    total, most = ngram_sizes(offsets, lo, hi, rows)
    out_doc = np.empty(total, np.int32)
    out_key = np.empty(total, np.uint64)
    out_count = np.empty(total, np.int64)
    buf = np.empty(most, np.uint64)
    seen, entry, filled, mask = doc_set(most)
    k = 0
    for d in range(len(offsets) - 1):
        if len(rows) and not rows[d]:
            continue
        m = doc_ngrams(ids, offsets[d], offsets[d + 1], lo, hi, np.uint64(bits), buf)
        first = k
        k = distinct_in_doc(buf, m, seen, entry, filled, mask, out_key, out_count, k)
        out_doc[first:k] = d
    return out_doc[:k], out_key[:k], out_count[:k]


@jit
def doc_distinct_keys(ids: np.ndarray, offsets: np.ndarray, lo: int, hi: int, bits: int,
                      rows: np.ndarray) -> np.ndarray:
    # each document's distinct n-gram keys, in order of first occurrence
    total, most = ngram_sizes(offsets, lo, hi, rows)
    out = np.empty(total, np.uint64)
    buf = np.empty(most, np.uint64)
    seen, entry, filled, mask = doc_set(most)
    no_counts = np.empty(0, np.int64)
    k = 0
    for d in range(len(offsets) - 1):
        if len(rows) and not rows[d]:
            continue
        m = doc_ngrams(ids, offsets[d], offsets[d + 1], lo, hi, np.uint64(bits), buf)
        k = distinct_in_doc(buf, m, seen, entry, filled, mask, out, no_counts, k)
    return out[:k]


@jit
def run_lengths(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.empty(len(sorted_values), sorted_values.dtype)
    counts = np.empty(len(sorted_values), np.int64)
    n, i = 0, 0
    while i < len(sorted_values):
        j = i + 1
        while j < len(sorted_values) and sorted_values[j] == sorted_values[i]:
            j += 1
        values[n], counts[n] = sorted_values[i], j - i
        n += 1
        i = j
    return values[:n], counts[:n]

@jit
def splitmix64(z: np.uint64) -> np.uint64:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))

@jit
def probe(slots_keys: np.ndarray, slots_values: np.ndarray, q: np.uint64,
          bits: int) -> np.int64:
    mask = np.uint64((1 << bits) - 1)
    s = splitmix64(q) >> np.uint64(64 - bits)
    while True:
        found = slots_keys[s]
        if found == q:
            return slots_values[s]
        if found == 0:
            return -1
        s = (s + np.uint64(1)) & mask


@jit
def build_index(keys: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    mask = np.uint64((1 << bits) - 1)
    slots_keys = np.zeros(1 << bits, np.uint64)
    slots_values = np.full(1 << bits, -1, np.int64)
    for i in range(len(keys)):
        s = splitmix64(keys[i]) >> np.uint64(64 - bits)
        while slots_keys[s] != 0:
            s = (s + np.uint64(1)) & mask
        slots_keys[s], slots_values[s] = keys[i], i
    return slots_keys, slots_values


@jit
def lookup(slots_keys: np.ndarray, slots_values: np.ndarray, queries: np.ndarray,
           bits: int) -> np.ndarray:
    out = np.empty(len(queries), np.int64)
    for i in range(len(queries)):
        out[i] = probe(slots_keys, slots_values, queries[i], bits)
    return out


@jit
def indexed_term_counts(ids: np.ndarray, offsets: np.ndarray, lo: int, hi: int, bits: int,
                        slots_keys: np.ndarray, slots_values: np.ndarray,
                        index_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # each n-gram looked up as it is made; only a document's hits are sorted and counted
    total, most = ngram_sizes(offsets, lo, hi, np.zeros(0, np.bool_))
    out_doc = np.empty(total, np.int32)
    out_pos = np.empty(total, np.int64)
    out_count = np.empty(total, np.int64)
    keys = np.empty(most, np.uint64)
    buf = np.empty(most, np.int64)
    k = 0
    for d in range(len(offsets) - 1):
        n_keys = doc_ngrams(ids, offsets[d], offsets[d + 1], lo, hi, np.uint64(bits), keys)
        m = 0
        for i in range(n_keys):
            pos = probe(slots_keys, slots_values, keys[i], index_bits)
            if pos >= 0:
                buf[m] = pos
                m += 1
        k = count_runs(buf[:m], d, out_doc, out_pos, out_count, k)
    return out_doc[:k], out_pos[:k], out_count[:k]


@jit
def shard_hits(keys: np.ndarray, tf: np.ndarray, rows: np.ndarray, train: np.ndarray,
               at: np.ndarray, slots_keys: np.ndarray, slots_values: np.ndarray, bits: int,
               idf: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    out_row = np.empty(len(at), np.int32)
    out_pos = np.empty(len(at), np.int32)
    out_tf = np.empty(len(at), np.int64)
    m = 0
    for i in at:
        pos = probe(slots_keys, slots_values, keys[i], bits)
        if pos < 0:
            continue
        value = tf[i] * idf[pos]
        squares[i] = value * value
        if train[i]:
            out_row[m], out_pos[m], out_tf[m] = rows[i], pos, tf[i]
            m += 1
    return out_row[:m], out_pos[:m], out_tf[:m]


@jit
def add_squares(sums: np.ndarray, sumsq: np.ndarray, at: np.ndarray,
                values: np.ndarray) -> None:
    for i in range(len(at)):  # one addition at a time, in the entries' order
        v = values[i]
        sums[at[i]] += v
        sumsq[at[i]] += v * v

@jit
def group_order(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    bounds = np.zeros(n_groups + 1, np.int64)
    for g in groups:
        bounds[g + 1] += 1
    for g in range(n_groups):
        bounds[g + 1] += bounds[g]
    fill = bounds[:-1].copy()
    order = np.empty(len(groups), np.int64)
    for i in range(len(groups)):  # a stable counting sort
        order[fill[groups[i]]] = i
        fill[groups[i]] += 1
    return order, bounds

@jit
def word_hash(data: np.ndarray, a: int, b: int) -> np.uint64:
    h = np.uint64(0xCBF29CE484222325)  # FNV-1a, then mixed
    for j in range(a, b):
        h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
    return splitmix64(h)


@jit
def encode_runs(data: np.ndarray, starts: np.ndarray,
                stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # open addressing over the distinct strings only, doubled at half full, so that the
    # table stays in cache (sized for every token it did not); a slot holds the hash
    # beside the id, and each distinct string is copied to a compact arena to compare
    # against (its first occurrence in the chunk is far away in memory)
    n = len(starts)
    bits = 10
    mask = np.uint64((1 << bits) - 1)
    slots = np.full(2 << bits, -1, np.int64)  # (hash, id) pairs
    ids = np.empty(n, np.int64)
    firsts = np.empty(n, np.int64)
    hashes = np.empty(n, np.uint64)
    arena = np.empty(len(data), np.uint8)
    word_at = np.zeros(n + 1, np.int64)
    n_ids = 0
    for i in range(n):
        a, b = starts[i], stops[i]
        h = word_hash(data, a, b)
        s = h & mask
        while True:
            k = slots[2 * s + 1]
            if k < 0:
                slots[2 * s], slots[2 * s + 1] = np.int64(h), n_ids
                firsts[n_ids], hashes[n_ids], ids[i] = i, h, n_ids
                at = word_at[n_ids]
                arena[at:at + b - a] = data[a:b]
                word_at[n_ids + 1] = at + b - a
                n_ids += 1
                break
            if np.uint64(slots[2 * s]) == h:
                at = word_at[k]
                same = word_at[k + 1] - at == b - a
                j = 0
                while same and j < b - a:
                    same = arena[at + j] == data[a + j]
                    j += 1
                if same:
                    ids[i] = k
                    break
            s = (s + np.uint64(1)) & mask
        if 2 * n_ids > (1 << bits):
            bits += 1
            mask = np.uint64((1 << bits) - 1)
            slots = table_slots(hashes, n_ids, bits)
    return ids, firsts[:n_ids], hashes[:n_ids], arena[:word_at[n_ids]], word_at[:n_ids + 1]


@jit
def sum_by_key(keys: np.ndarray, counts: np.ndarray,
               part_bits: int) -> tuple[np.ndarray, np.ndarray]:
    # keys grouped by their hash into 2**part_bits (>= 2) partitions, each summed in a
    # small open-addressing table that stays in cache (a sort of all keys did not)
    n = len(keys)
    shift = np.uint64(64 - part_bits)
    bounds = np.zeros((1 << part_bits) + 1, np.int64)
    for i in range(n):
        bounds[(splitmix64(keys[i]) >> shift) + 1] += 1
    largest = 0
    for p in range(1 << part_bits):
        largest = max(largest, bounds[p + 1])
        bounds[p + 1] += bounds[p]
    fill = bounds[:-1].copy()
    grouped_keys = np.empty(n, np.uint64)
    grouped_counts = np.empty(n, np.int64)
    for i in range(n):
        p = splitmix64(keys[i]) >> shift
        j = fill[p]
        fill[p] = j + 1
        grouped_keys[j], grouped_counts[j] = keys[i], counts[i]
    bits = 4
    while (1 << bits) < 2 * largest:
        bits += 1
    mask = np.uint64((1 << bits) - 1)
    slots = np.full(1 << bits, -1, np.int64)
    out_keys = np.empty(n, np.uint64)
    out_sums = np.empty(n, np.int64)
    m = 0
    for p in range(1 << part_bits):
        first = m
        for i in range(bounds[p], bounds[p + 1]):
            key = grouped_keys[i]
            s = splitmix64(key) & mask
            while True:
                k = slots[s]
                if k < 0:
                    slots[s] = m
                    out_keys[m], out_sums[m] = key, grouped_counts[i]
                    m += 1
                    break
                if out_keys[k] == key:
                    out_sums[k] += grouped_counts[i]
                    break
                s = (s + np.uint64(1)) & mask
        for k in range(first, m):  # empty only the slots this partition used
            s = splitmix64(out_keys[k]) & mask
            while slots[s] != k:
                s = (s + np.uint64(1)) & mask
            slots[s] = -1
    return out_keys[:m], out_sums[:m]


@jit
def partitions(keys: np.ndarray, mix: np.uint64, shift: np.uint64,
               mask: np.uint64) -> np.ndarray:
    out = np.empty(len(keys), np.intp)
    for i in range(len(keys)):
        out[i] = ((keys[i] * mix) >> shift) & mask
    return out


@jit
def hash_words(utf8: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(len(offsets) - 1, np.uint64)
    for i in range(len(out)):
        out[i] = word_hash(utf8, offsets[i], offsets[i + 1])
    return out


@jit
def table_slots(hashes: np.ndarray, n_words: int, bits: int) -> np.ndarray:
    # (hash, id) pairs of the first n_words words, at most half full
    mask = np.uint64((1 << bits) - 1)
    slots = np.full(2 << bits, -1, np.int64)
    for k in range(n_words):
        s = hashes[k] & mask
        while slots[2 * s + 1] >= 0:
            s = (s + np.uint64(1)) & mask
        slots[2 * s], slots[2 * s + 1] = np.int64(hashes[k]), k
    return slots


@jit
def table_add(slots: np.ndarray, bits: int, hashes: np.ndarray, arena: np.ndarray,
              word_at: np.ndarray, n_words: int, utf8: np.ndarray, offsets: np.ndarray,
              in_hashes: np.ndarray, insert: bool) -> tuple[np.ndarray, int]:
    # the id of every word (utf8[offsets[i]:offsets[i + 1]]), new ones appended when
    # insert (the caller made room: slots stay at most half full), else -1
    mask = np.uint64((1 << bits) - 1)
    ids = np.empty(len(in_hashes), np.int64)
    for i in range(len(in_hashes)):
        a, b, h = offsets[i], offsets[i + 1], in_hashes[i]
        s = h & mask
        while True:
            k = slots[2 * s + 1]
            if k < 0:
                if insert:
                    slots[2 * s], slots[2 * s + 1] = np.int64(h), n_words
                    hashes[n_words] = h
                    at = word_at[n_words]
                    arena[at:at + b - a] = utf8[a:b]
                    word_at[n_words + 1] = at + b - a
                    k = n_words
                    n_words += 1
                ids[i] = k
                break
            if np.uint64(slots[2 * s]) == h:
                at = word_at[k]
                same = word_at[k + 1] - at == b - a
                j = 0
                while same and j < b - a:
                    same = arena[at + j] == utf8[a + j]
                    j += 1
                if same:
                    ids[i] = k
                    break
            s = (s + np.uint64(1)) & mask
    return ids, n_words


@jit
def remap_keys(keys: np.ndarray, mapping: np.ndarray, bits: int) -> np.ndarray:
    # every slot t + 1 of a key replaced by mapping[t] + 1, lowest slot first
    mask = np.uint64((1 << bits) - 1)
    width = np.uint64(bits)
    out = np.empty(len(keys), np.uint64)
    for i in range(len(keys)):
        key, new, shift = keys[i], np.uint64(0), np.uint64(0)
        while key:
            new |= np.uint64(mapping[np.int64(key & mask) - 1] + 1) << shift
            key >>= width
            shift += width
        out[i] = new
    return out


@jit
def token_runs(data: np.ndarray, value: np.ndarray, known: np.ndarray,
               min_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    # byte ranges of the runs of characters that value accepts, at least min_len
    # characters long, from valid UTF-8; and how many characters known (when not empty)
    # does not cover.  Only a count: collecting those code points here made the loop
    # four times slower
    n = len(data)
    starts = np.empty(n // 2 + 1, np.int64)
    stops = np.empty(n // 2 + 1, np.int64)
    check = len(known) > 0
    n_missing, k = 0, 0
    run_start, run_chars = -1, 0
    i = 0
    while i < n:
        b = data[i]
        width = 1
        if b < 0x80:
            accepted = value[b]
        else:
            width = 2 + (b >= 0xE0) + (b >= 0xF0)
            cp = np.int64(b & (0x7F >> width))
            for j in range(1, width):
                cp = (cp << 6) | (data[i + j] & 0x3F)
            if check and not known[cp]:
                n_missing += 1
            accepted = value[cp]
        if accepted:
            if run_start < 0:
                run_start, run_chars = i, 0
            run_chars += 1
        elif run_start >= 0:
            if run_chars >= min_len:
                starts[k], stops[k] = run_start, i
                k += 1
            run_start = -1
        i += width
    if run_start >= 0 and run_chars >= min_len:
        starts[k], stops[k] = run_start, n
        k += 1
    return starts[:k], stops[:k], n_missing
