"""Tests of ooc.text.sources: streaming raw text inputs, hostile input, bad rows."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import pickle
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ooc.errors import BadRowError, InputFormatError, InputNotFoundError, OocError
from ooc.text._csv import FIELD_LIMIT
from ooc.text.sources import BadRow, RejectLog, Rows, SourceSpec, read_rows

COMPRESSORS = {"": lambda b: b, ".gz": gzip.compress, ".bz2": bz2.compress,
               ".xz": lzma.compress}


def write(directory: Path, name: str, content: str | bytes) -> str:
    """Write ``content`` (str as UTF-8, no newline translation) and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(COMPRESSORS[path.suffix if path.suffix in COMPRESSORS else ""](data))
    return str(path)


def read_all(*paths: str, chunk_rows: int = 10_000, **spec: object
             ) -> tuple[list[int], list[str], list[str]]:
    """All rows of ``paths`` as ``(row_ids, texts, labels)``."""
    ids: list[int] = []
    texts: list[str] = []
    labels: list[str] = []
    for rows in read_rows(SourceSpec(paths, **spec), chunk_rows=chunk_rows):  # type: ignore[arg-type]
        ids += rows.row_ids.tolist()
        texts += rows.texts
        labels += rows.labels
    return ids, texts, labels


def read_skipping(*paths: str, **spec: object) -> tuple[list[int], list[str], list[BadRow]]:
    """``(row_ids, texts, bad_rows)`` read with ``on_bad_row="skip"``."""
    bad: list[BadRow] = []
    ids: list[int] = []
    texts: list[str] = []
    spec_ = SourceSpec(paths, on_bad_row="skip", **spec)  # type: ignore[arg-type]
    for rows in read_rows(spec_, on_skip=bad.append):
        ids += rows.row_ids.tolist()
        texts += rows.texts
    return ids, texts, bad


# --- parsed correctly -------------------------------------------------------------------

def test_csv_rows_and_types(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text,label\nhello world,pos\nbad day,neg\n")
    chunks = list(read_rows(SourceSpec((path,))))
    assert len(chunks) == 1
    rows = chunks[0]
    assert isinstance(rows, Rows) and len(rows) == 2
    assert rows.row_ids.dtype == np.int64 and rows.row_ids.tolist() == [0, 1]
    assert rows.texts == ["hello world", "bad day"] and rows.labels == ["pos", "neg"]


def test_quoted_fields_with_newlines_quotes_and_delimiters(tmp_path: Path) -> None:
    content = ('label,text\n'
               'pos,"She said ""great"",\nthen left.\r\nTwice."\n'
               'neg,"a, b"\n'
               'neg,\n')  # line 6: empty text, after a 3-line record
    path = write(tmp_path, "q.csv", content)
    _, texts, bad = read_skipping(path)
    assert texts == ['She said "great",\nthen left.\r\nTwice.', "a, b"]
    assert [(b.line, b.category) for b in bad] == [(6, "empty text")]


def test_bom_crlf_and_no_trailing_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "\ufefftext,label\r\nfirst,1\r\n\"two\r\nlines\",2\r\nlast,3")
    ids, texts, labels = read_all(path)
    assert ids == [0, 1, 2]
    assert texts == ["first", "two\r\nlines", "last"]
    assert labels == ["1", "2", "3"]


def test_jsonl_bom_crlf_and_integer_labels(tmp_path: Path) -> None:
    lines = ['{"text": "good", "label": 1}', '{"text": "bad", "label": " neg "}',
             '{"label": 0, "text": "last"}']
    path = write(tmp_path, "a.jsonl", "\ufeff" + "\r\n".join(lines))
    assert read_all(path) == ([0, 1, 2], ["good", "bad", "last"], ["1", "neg", "0"])


def test_labels_are_kept_as_written_but_stripped(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "text,label\na, 01 \nb,Positive\n")
    assert read_all(path)[2] == ["01", "Positive"]


def test_tsv_and_custom_delimiter(tmp_path: Path) -> None:
    tsv = write(tmp_path, "a.tsv", 'label\ttext\npos\t"tab\there, comma, ok"\n')
    semi = write(tmp_path, "a.csv", "label;text\npos;x, y\n")
    assert read_all(tsv)[1] == ["tab\there, comma, ok"]
    assert read_all(semi, delimiter=";")[1] == ["x, y"]


def test_several_text_columns_are_joined(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "a.csv", "title,label,body\nGreat,pos,Loved it\n,neg,Meh\n")
    jsonl = write(tmp_path, "a.jsonl", '{"title": "Great", "body": "Loved it", "label": 1}\n'
                                       '{"title": null, "body": "Meh", "label": 0}\n')
    for path in (csv_path, jsonl):
        texts = read_all(path, text_columns=("title", "body"))[1]
        assert texts == ["Great Loved it", " Meh"]


def test_no_header_uses_indexes(tmp_path: Path) -> None:
    path = write(tmp_path, "n.csv", "pos,first\nneg,second\nneg,third,extra\n")
    ids, texts, bad = read_skipping(path, header=False, text_columns=(1,), label_column=0)
    assert (ids, texts) == ([0, 1], ["first", "second"])
    assert bad[0].line == 3 and "expected 2 (as in the first row)" in bad[0].reason
    assert read_all(path, header=False, text_columns=(-1,), label_column=0,
                    on_bad_row="skip")[1] == ["first", "second"]


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "a.csv", "text,label\n\na,1\n\r\n\nb,2\n\n")
    jsonl = write(tmp_path, "a.jsonl",
                  '\n{"text": "a", "label": 1}\n  \n{"text": "b", "label": 2}\n')
    for path in (csv_path, jsonl):
        assert read_all(path)[:2] == ([0, 1], ["a", "b"])


def test_empty_and_header_only_files_give_no_rows(tmp_path: Path) -> None:
    assert read_all(write(tmp_path, "empty.csv", "")) == ([], [], [])
    assert read_all(write(tmp_path, "header.csv", "text,label\n")) == ([], [], [])
    assert read_all(write(tmp_path, "empty.jsonl", "")) == ([], [], [])


# --- bad rows ---------------------------------------------------------------------------

CSV_BAD_ROWS = {
    # name: (data rows after the header "text,label", 1-based start line, category)
    "invalid utf-8": (b"ok,pos\ncaf\xe9 au lait,pos\nok,neg\n", 3, "invalid UTF-8"),
    "invalid utf-8 in label": (b"ok,pos\nfine,p\xffs\nok,neg\n", 3, "invalid UTF-8"),
    "empty text": (b"ok,pos\n,pos\nok,neg\n", 3, "empty text"),
    "blank text": (b'ok,pos\n"  \n ",pos\nok,neg\n', 3, "empty text"),
    "missing label": (b"ok,pos\nfine, \nok,neg\n", 3, "missing label"),
    "ragged short": (b'ok,pos\n"multi\nline"\nok,neg\n', 3, "ragged row"),
    "ragged long": (b"ok,pos\na,b,c\nok,neg\n", 3, "ragged row"),
    "malformed quote": (b'ok,pos\n"a"b,pos\nok,neg\n', 3, "malformed CSV"),
    "cut off mid-row": (b'ok,pos\nok,neg\n"the file ends in\nthe middle', 4,
                        "unterminated quoted field"),
}


@pytest.mark.parametrize("name", CSV_BAD_ROWS)
def test_csv_bad_row_raises_with_file_and_line(tmp_path: Path, name: str) -> None:
    data, line, category = CSV_BAD_ROWS[name]
    path = write(tmp_path, "bad.csv", b"text,label\n" + data)
    with pytest.raises(BadRowError) as info:
        read_all(path)
    assert str(info.value).startswith(f"{path}:{line}: {category}")
    assert "--on-bad-row skip" in str(info.value)
    assert (info.value.path, info.value.line) == (path, line)


@pytest.mark.parametrize("name", CSV_BAD_ROWS)
def test_csv_bad_row_is_skipped_and_keeps_its_id(tmp_path: Path, name: str) -> None:
    data, line, category = CSV_BAD_ROWS[name]
    path = write(tmp_path, "bad.csv", b"text,label\n" + data)
    ids, texts, bad = read_skipping(path)
    # the lines after the first of a record the parser fails on are read again as rows
    assert len(bad) == (2 if name == "cut off mid-row" else 1)
    assert (bad[0].path, bad[0].line, bad[0].category) == (path, line, category)
    assert "\ufffd" not in "".join(texts)  # never silently replaced
    expected = [0, 2] if line == 3 else [0, 1]
    assert ids == expected


def test_bad_row_record_is_the_raw_text(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", b'text,label\n"a\nb",x,y\n' + b"z" * 500 + b"\xff,pos\n")
    _, _, bad = read_skipping(path)
    assert bad[0].record == '"a\nb",x,y'
    assert bad[1].line == 4 and bad[1].record.startswith("zzz") and len(bad[1].record) < 210
    assert "byte 0xff in column 'text'" in bad[1].reason


def test_field_over_the_size_limit_is_a_bad_row(tmp_path: Path) -> None:
    huge = b'"' + b"x" * (FIELD_LIMIT + 1) + b'",pos\n'
    path = write(tmp_path, "big.csv", b"text,label\nok,pos\n" + huge + b"fine,neg\n")
    ids, texts, bad = read_skipping(path)
    assert (ids, texts) == ([0, 2], ["ok", "fine"])
    assert [(b.line, b.category) for b in bad] == [(3, "field too large")]


JSONL_BAD_ROWS = {
    "invalid json": (b'{"text": "a", "label": 1\n', "invalid JSON"),
    "not an object": (b'["a", 1]\n', "not a JSON object"),
    "missing text key": (b'{"txt": "a", "label": 1}\n', "missing key"),
    "missing label key": (b'{"text": "a"}\n', "missing key"),
    "null label": (b'{"text": "a", "label": null}\n', "missing label"),
    "float label": (b'{"text": "a", "label": 1.5}\n', "wrong type"),
    "bool label": (b'{"text": "a", "label": true}\n', "wrong type"),
    "number text": (b'{"text": 5, "label": 1}\n', "wrong type"),
    "empty text": (b'{"text": " ", "label": 1}\n', "empty text"),
    "invalid utf-8": (b'{"text": "caf\xe9", "label": 1}\n', "invalid UTF-8"),
    "lone surrogate escape": (b'{"text": "a\\ud800", "label": 1}\n', "invalid UTF-8"),
}


@pytest.mark.parametrize("name", JSONL_BAD_ROWS)
def test_jsonl_bad_rows(tmp_path: Path, name: str) -> None:
    data, category = JSONL_BAD_ROWS[name]
    good = b'{"text": "fine", "label": "pos"}\n'
    path = write(tmp_path, "bad.jsonl", good + b"\n" + data + good)
    with pytest.raises(BadRowError, match=f"^{path}:3: {category}"):
        read_all(path)
    ids, _, bad = read_skipping(path)
    assert ids == [0, 2]
    assert [(b.line, b.category) for b in bad] == [(3, category)]


def test_missing_key_lists_the_keys_present(tmp_path: Path) -> None:
    path = write(tmp_path, "k.jsonl", '{"review": "a", "label": 1}\n')
    with pytest.raises(BadRowError, match="missing key: 'text' \\(keys present: 'review', "):
        read_all(path)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_truncated_compressed_file_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    rows = "".join(f"text number {i},{i % 2}\n" for i in range(20_000))
    data = COMPRESSORS[suffix](("text,label\n" + rows).encode())
    path = tmp_path / f"cut.csv{suffix}"
    path.write_bytes(data[: len(data) * 2 // 3])
    for on_bad_row in ("error", "skip"):
        with pytest.raises(InputFormatError, match=f"^{path}: the .* stream is truncated"):
            read_all(str(path), on_bad_row=on_bad_row)


def test_not_really_compressed_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_bytes(b"text,label\na,1\n")
    with pytest.raises(InputFormatError, match="plain.csv.gz: the gz stream is .* corrupt"):
        read_all(str(path))


# --- errors about a whole input ---------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    good = write(tmp_path, "a.csv", "text,label\na,1\n")
    with pytest.raises(InputNotFoundError, match="nope.csv: no such file") as info:
        read_rows(SourceSpec((good, str(tmp_path / "nope.csv"))))  # fails before iterating
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, OocError)


@pytest.mark.parametrize("name", ["a.xlsx", "a.txt", "a.csv.zip", "README"])
def test_unsupported_kind_names_file_and_kinds(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "x")
    with pytest.raises(InputFormatError, match=f"{name}: unsupported input kind.*\\.jsonl"):
        read_rows(SourceSpec((path,)))


def test_unknown_column_lists_available_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "\ufeffreview,sentiment\na,1\n")
    with pytest.raises(InputFormatError,
                       match="no column named 'text'.*Available columns: 'review', 'sentiment'"):
        read_rows(SourceSpec((path,)))
    with pytest.raises(InputFormatError, match="no column named 'stars'"):
        read_rows(SourceSpec((path,), text_columns=("review",), label_column="stars"))
    assert read_all(path, text_columns=("review",), label_column="sentiment")[1] == ["a"]


def test_duplicate_column_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text,label,text\na,1,b\n")
    with pytest.raises(InputFormatError, match="2 columns named 'text'"):
        read_rows(SourceSpec((path,)))


def test_column_index_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text,label\na,1\n")
    with pytest.raises(InputFormatError, match="column index 5 is out of range.*0 to 1"):
        read_rows(SourceSpec((path,), text_columns=(5,)))
    with pytest.raises(InputFormatError, match="read without a header"):
        read_rows(SourceSpec((path,), header=False))


def test_jsonl_columns_must_be_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": 1}\n')
    with pytest.raises(InputFormatError, match="named by key"):
        read_rows(SourceSpec((path,), text_columns=(0,)))


def test_empty_directory_tree(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path, "tree/pos/.hidden.txt", "secret")
    write(tmp_path, "tree/neg/notes.md", "not a document")
    for root in ("empty", "tree"):
        with pytest.raises(InputFormatError, match="no documents found"):
            read_rows(SourceSpec((str(tmp_path / root),)))


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="on_bad_row"):
        SourceSpec(("a.csv",), on_bad_row="ignore")
    with pytest.raises(ValueError, match="delimiter"):
        SourceSpec(("a.csv",), delimiter=";;")
    with pytest.raises(ValueError, match="empty"):
        SourceSpec(())
    with pytest.raises(TypeError, match="column"):
        SourceSpec(("a.csv",), label_column=True)
    spec = SourceSpec([Path("a.csv")], text_columns="title")  # type: ignore[arg-type]
    assert spec.paths == ("a.csv",) and spec.text_columns == ("title",)
    with pytest.raises(ValueError, match="chunk_rows"):
        read_rows(spec, chunk_rows=0)


def test_bad_row_error_message_and_pickling() -> None:
    err = BadRowError("in.csv", 7, "empty text: column 'text' is empty or blank")
    assert str(err) == ("in.csv:7: empty text: column 'text' is empty or blank. Fix the row, "
                        "or pass --on-bad-row skip (on_bad_row='skip') to skip such rows and "
                        "list them in a rejects file.")
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.line, str(again)) == ("in.csv", 7, str(err))
    assert isinstance(err, ValueError) and isinstance(err, OocError)


# --- several inputs, ids, chunks, compression, folders ----------------------------------

def test_row_ids_run_on_across_files_and_skipped_rows(tmp_path: Path) -> None:
    first = write(tmp_path, "1.csv", "text,label\na,1\n,1\nc,2\n")
    second = write(tmp_path, "2.jsonl", '{"text": "d", "label": 1}\n{"label": 2}\n'
                                        '{"text": "f", "label": 2}\n')
    ids, texts, bad = read_skipping(first, second)
    assert ids == [0, 2, 3, 5] and texts == ["a", "c", "d", "f"]
    assert [(Path(b.path).name, b.line) for b in bad] == [("1.csv", 3), ("2.jsonl", 2)]


def test_chunks_have_exactly_chunk_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "text,label\n" + "".join(f"t{i},x\n" for i in range(10)))
    sizes = [len(r) for r in read_rows(SourceSpec((path,)), chunk_rows=3)]
    assert sizes == [3, 3, 3, 1]
    halves = [write(tmp_path, f"{k}.csv", "text,label\n" + "".join(
        f"t{i},x\n" for i in range(5 * k, 5 * k + 5))) for k in (0, 1)]
    chunks = list(read_rows(SourceSpec(tuple(halves)), chunk_rows=3))
    assert [len(r) for r in chunks] == [3, 3, 3, 1]
    assert np.concatenate([r.row_ids for r in chunks]).tolist() == list(range(10))
    assert [t for r in chunks for t in r.texts] == [f"t{i}" for i in range(10)]


def test_chunks_with_skipped_rows(tmp_path: Path) -> None:
    body = "".join(f"t{i},x\n" if i % 3 else ",x\n" for i in range(12))
    path = write(tmp_path, "a.csv", "text,label\n" + body)
    spec = SourceSpec((path,), on_bad_row="skip")
    chunks = list(read_rows(spec, chunk_rows=3))
    assert [len(r) for r in chunks] == [3, 3, 2]
    assert [r.row_ids.tolist() for r in chunks] == [[1, 2, 4], [5, 7, 8], [10, 11]]


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_compressed_inputs_read_like_plain_ones(tmp_path: Path, kind: str, suffix: str) -> None:
    texts = [f'review {i}, "quoted"\nsecond line é' for i in range(50)]
    if kind == "jsonl":
        content = "".join(json.dumps({"text": t, "label": i % 3}) + "\n"
                          for i, t in enumerate(texts))
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t" if kind == "tsv" else ",")
        writer.writerow(["text", "label"])
        writer.writerows([t, i % 3] for i, t in enumerate(texts))
        content = buffer.getvalue()
    plain = read_all(write(tmp_path, f"a.{kind}", content), chunk_rows=7)
    packed = read_all(write(tmp_path, f"a.{kind}{suffix}", content), chunk_rows=7)
    assert packed == plain
    assert plain[1] == texts


def test_folder_tree(tmp_path: Path) -> None:
    root = tmp_path / "aclImdb" / "train"
    write(root, "pos/1_10.txt", "Loved <br />it")
    write(root, "pos/0_9.txt", "\ufeffGreat film")
    write(root, "neg/0_2.txt", "Dull.\nVery dull.")
    write(root, "neg/.0_1.txt", "hidden")
    write(root, "neg/notes.md", "ignored")
    write(root, "urls_pos.txt", "http://ignored")
    write(root, "unsup/0_0.txt", "unlabelled")
    (root / "neg" / "deeper").mkdir()
    ids, texts, labels = read_all(str(root))
    assert ids == [0, 1, 2, 3]
    assert texts == ["Dull.\nVery dull.", "Great film", "Loved <br />it", "unlabelled"]
    assert labels == ["neg", "pos", "pos", "unsup"]
    # a class folder on its own: label = the folder's name (so unsup can be left out)
    assert read_all(str(root / "pos"), str(root / "neg"))[2] == ["pos", "pos", "neg"]


def test_folder_bad_documents(tmp_path: Path) -> None:
    write(tmp_path, "t/pos/a.txt", "good")
    write(tmp_path, "t/pos/b.txt", b"bad \xff byte")
    write(tmp_path, "t/pos/c.txt", "   \n")
    write(tmp_path, "t/pos/d.txt", "fine")
    ids, texts, bad = read_skipping(str(tmp_path / "t"))
    assert (ids, texts) == ([0, 3], ["good", "fine"])
    assert [(Path(b.path).name, b.line, b.category) for b in bad] == [
        ("b.txt", 1, "invalid UTF-8"), ("c.txt", 1, "empty text")]
    assert bad[0].record == "bad \\xff byte"
    with pytest.raises(BadRowError, match="b.txt:1: invalid UTF-8: byte 0xff at byte offset 4"):
        read_all(str(tmp_path / "t"))


def test_reject_log(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"text,label\nok,1\n,1\nx\nbad\xfe,2\n,3\n")
    log_path = tmp_path / "rejects.csv"
    with RejectLog(log_path) as rejects:
        rows = list(read_rows(SourceSpec((path,), on_bad_row="skip"), on_skip=rejects))
    assert [r.row_ids.tolist() for r in rows] == [[0]]
    assert rejects.count == 4
    assert rejects.by_reason == {"empty text": 2, "ragged row": 1, "invalid UTF-8": 1}
    with open(log_path, newline="", encoding="utf-8") as file:
        logged = list(csv.reader(file))
    assert logged[0] == ["path", "line", "reason", "record"]
    assert [(r[0], r[1], r[3]) for r in logged[1:]] == [
        (path, "3", ",1"), (path, "4", "x"), (path, "5", "bad\\xfe,2"), (path, "6", ",3")]


def test_memory_is_bounded_by_the_chunk(tmp_path: Path) -> None:
    text = "word " * 400
    path = write(tmp_path, "big.csv", "text,label\n" + f"{text},pos\n" * 5_000)  # 10 MB
    tracemalloc.start()
    try:
        n_rows = sum(len(r) for r in read_rows(SourceSpec((path,)), chunk_rows=100))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n_rows == 5_000
    assert peak < 2_000_000, peak


encodable = st.characters(blacklist_categories=("Cs",))  # lone surrogates are not UTF-8
label_strategy = st.text(alphabet=encodable, min_size=1, max_size=8).filter(
    lambda s: s == s.strip() and s != "")
hostile_chars = st.sampled_from(list('ab ,"\n\r\t;é€😀\x00\u2028\ufeff'))
text_strategy = st.text(alphabet=hostile_chars | encodable, min_size=1,
                        max_size=40).filter(lambda s: not s.isspace())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(text_strategy, label_strategy), max_size=20),
       chunk_rows=st.integers(1, 5))
def test_csv_round_trip(tmp_path: Path, rows: list[tuple[str, str]], chunk_rows: int) -> None:
    path = tmp_path / "round.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    ids, texts, labels = read_all(str(path), chunk_rows=chunk_rows)
    assert ids == list(range(len(rows)))
    assert list(zip(texts, labels, strict=True)) == rows


# --- encodings --------------------------------------------------------------------------
ACCENTED = [("café crème brûlée", "pos"), ("naïve señor, «quoted»", "neg"), ("Ünïcödé ß", "pos")]
WINDOWS = [("“curly” quotes cost 5 €", "pos"), ("an en \u2013 dash… and œuvre", "neg")]


def csv_text(rows: list[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([("text", "label"), *rows])
    return buffer.getvalue()


@pytest.mark.parametrize(("encoding", "rows"), [
    ("latin-1", ACCENTED), ("cp1252", ACCENTED + WINDOWS), ("utf-16", ACCENTED + WINDOWS),
    ("utf-8-sig", ACCENTED), ("utf-16-be", ACCENTED)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_encodings_read_like_utf8(tmp_path: Path, encoding: str, rows: list[tuple[str, str]],
                                  suffix: str) -> None:
    content = csv_text(rows)
    path = write(tmp_path, f"a.csv{suffix}", content.encode(encoding))
    assert read_all(path, encoding=encoding) == read_all(write(tmp_path, "u.csv", content))
    assert read_all(path, encoding=encoding)[1] == [text for text, _ in rows]


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_jsonl_and_folder_documents_in_another_encoding(tmp_path: Path, encoding: str) -> None:
    lines = "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                    for t, y in ACCENTED + WINDOWS)
    assert read_all(write(tmp_path, "a.jsonl", lines.encode(encoding)), encoding=encoding)[1:] \
        == ([t for t, _ in ACCENTED + WINDOWS], [y for _, y in ACCENTED + WINDOWS])
    for k, (text, label) in enumerate(ACCENTED + WINDOWS):
        write(tmp_path, f"tree/{label}/{k}.txt", text.encode(encoding))
    texts = read_all(str(tmp_path / "tree"), encoding=encoding)[1]
    assert sorted(texts) == sorted(t for t, _ in ACCENTED + WINDOWS)


def test_invalid_bytes_are_bad_rows_under_strict_and_replaced_under_replace(
        tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"text,label\nok,1\ncaf\xe9 au lait,2\nfine,1\n")
    with pytest.raises(BadRowError, match=r"a.csv:3: invalid UTF-8: byte 0xe9 in column 'text'"):
        read_all(path)
    assert read_all(path, decode_errors="replace") == (
        [0, 1, 2], ["ok", "caf\ufffd au lait", "fine"], ["1", "2", "1"])
    tree = tmp_path / "tree"
    write(tree, "pos/a.txt", b"bad \xff byte")
    write(tree, "neg/b.txt", "fine")
    assert read_all(str(tree), decode_errors="replace")[1] == ["fine", "bad \ufffd byte"]


def test_bytes_undefined_in_the_encoding_name_it(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"text,label\nok,1\nab\x81c,2\n")  # 0x81: no cp1252 char
    ids, texts, bad = read_skipping(path, encoding="cp1252")
    assert (ids, texts) == ([0], ["ok"])
    assert [(b.line, b.reason) for b in bad] == [(3, "invalid cp1252: byte 0x81 in column 'text'")]


def test_undecodable_wide_file_says_what_to_do(tmp_path: Path) -> None:
    # an unpaired UTF-16 surrogate: the strict decoder fails on the whole file
    data = "text,label\nok,1\n".encode("utf-16-le") + b"\x00\xd8a\x00,\x001\x00\n\x00"
    path = write(tmp_path, "a.csv", data)
    with pytest.raises(InputFormatError, match="not valid utf-16-le.*--decode-errors replace"):
        read_all(path, encoding="utf-16-le")
    assert read_all(path, encoding="utf-16-le", decode_errors="replace")[1] == ["ok", "\ufffda"]


def test_encoding_options_are_validated() -> None:
    for bad in ({"encoding": "no-such-codec"}, {"encoding": "base64"},
                {"decode_errors": "ignore"}):
        with pytest.raises(ValueError, match="encoding|decode_errors"):
            SourceSpec(("a.csv",), **bad)  # type: ignore[arg-type]


# --- parquet ----------------------------------------------------------------------------
def write_parquet(path: Path, columns: dict[str, object], row_group_size: int = 4) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return str(path)


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 100])
def test_parquet_reads_like_csv_across_row_groups(tmp_path: Path, chunk_rows: int) -> None:
    import pyarrow as pa

    texts = [f"review {i}, é “x”\nline two" for i in range(23)]
    labels = [i % 3 for i in range(23)]
    content = csv_text([(t, str(y)) for t, y in zip(texts, labels, strict=True)])
    expected = read_all(write(tmp_path, "a.csv", content), chunk_rows=chunk_rows)
    for text_column in (texts, pa.array(texts).dictionary_encode(), pa.array(texts,
                                                                            pa.large_string())):
        for label_column in (labels, [str(y) for y in labels], pa.array(labels, pa.int8())):
            path = write_parquet(tmp_path / "a.parquet",
                                 {"label": label_column, "text": text_column})
            assert read_all(path, chunk_rows=chunk_rows) == expected
    # columns by index, several text columns joined
    path = write_parquet(tmp_path / "b.parquet", {"y": labels, "a": texts, "b": texts})
    ids, joined, _ = read_all(path, text_columns=(1, "b"), label_column=0)
    assert joined == [f"{t} {t}" for t in texts] and ids == list(range(23))


def test_parquet_nulls_are_bad_rows_numbered_by_row(tmp_path: Path) -> None:
    import pyarrow as pa

    path = write_parquet(tmp_path / "a.parquet", {
        "text": ["ok", None, "fine", " ", "good", "also"],
        "label": pa.array(["1", "2", None, "3", "  ", "4"])}, row_group_size=2)
    ids, texts, bad = read_skipping(path)
    assert (ids, texts) == ([0, 5], ["ok", "also"])
    assert [(b.line, b.category) for b in bad] == [
        (2, "empty text"), (3, "missing label"), (4, "empty text"), (5, "missing label")]
    assert bad[0].record == '{"text": null, "label": "2"}'
    with pytest.raises(BadRowError, match=r"a.parquet:2: empty text: column 'text' is null"):
        read_all(path)


def test_parquet_invalid_utf8_follows_decode_errors(tmp_path: Path) -> None:
    import pyarrow as pa

    text = pa.array([b"ok", b"caf\xe9"], pa.binary()).view(pa.string())  # unchecked bytes
    path = write_parquet(tmp_path / "a.parquet", {"text": text, "label": ["1", "2"]})
    with pytest.raises(BadRowError, match=r"a.parquet:2: invalid UTF-8: byte 0xe9"):
        read_all(path)
    assert read_all(path, decode_errors="replace")[1] == ["ok", "caf\ufffd"]


def test_parquet_whole_file_problems(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"text": ["a"], "label": [1.5], "n": [2]})
    with pytest.raises(InputFormatError, match="label column 'label' holds double values"):
        read_all(path)
    with pytest.raises(InputFormatError, match="text column 'n' holds int64 values"):
        read_all(path, text_columns="n", label_column="n")
    with pytest.raises(InputFormatError, match="no column named 'body' in the schema. "
                       "Available columns: 'text', 'label', 'n'"):
        read_all(path, text_columns="body")
    with pytest.raises(InputFormatError, match="cannot read it as Parquet"):
        read_all(write(tmp_path, "b.parquet", "text,label\na,1\n"))
    with pytest.raises(InputFormatError, match="unsupported input kind.*'.parquet.gz'"):
        read_all(write(tmp_path, "c.parquet.gz", b"whatever"))


def test_parquet_memory_is_bounded_by_the_row_group(tmp_path: Path) -> None:
    import pyarrow as pa

    text = "word " * 400
    path = write_parquet(tmp_path / "big.parquet", {"text": [text] * 5_000,
                                                    "label": ["pos"] * 5_000},
                         row_group_size=500)  # 10 MB of text in 10 row groups
    peak = 0
    tracemalloc.start()
    try:
        for rows in read_rows(SourceSpec((path,)), chunk_rows=100):
            peak = max(peak, pa.total_allocated_bytes())
            assert len(rows) == 100
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # Arrow buffers: a batch, not the file's 10 MB (measured 0.25 MB)
    assert python_peak < 2_000_000, python_peak


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"text": ["a"], "label": ["1"]})
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails
    with pytest.raises(ImportError, match="Parquet inputs need pyarrow.*pip install"):
        read_all(path)


# --- limit ------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_rows", [1, 4, 7, 100])
@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_limit_reads_the_first_rows_across_inputs(tmp_path: Path, chunk_rows: int,
                                                  kind: str) -> None:
    rows = [(f"doc {i}", str(i % 2)) for i in range(30)]
    paths = []
    for name, part in (("a", rows[:12]), ("b", rows[12:])):
        if kind == "csv":
            paths.append(write(tmp_path, f"{name}.csv", csv_text(part)))
        elif kind == "jsonl":
            paths.append(write(tmp_path, f"{name}.jsonl", "".join(
                json.dumps({"text": t, "label": y}) + "\n" for t, y in part)))
        else:
            paths.append(write_parquet(tmp_path / f"{name}.parquet",
                                       {"text": [t for t, _ in part],
                                        "label": [y for _, y in part]}))
    whole = read_all(*paths, chunk_rows=chunk_rows)
    for limit in (1, 5, 12, 13, 29, 30, 1000):
        got = read_all(*paths, chunk_rows=chunk_rows, limit=limit)
        assert got == tuple(column[:limit] for column in whole), limit


def test_limit_reports_only_the_bad_rows_it_reads(tmp_path: Path) -> None:
    lines = [f"doc {i},{i % 2}" for i in range(20)]
    lines[3] = "ragged,row,here"
    lines[8] = "ragged,row,there"
    path = write(tmp_path, "a.csv", "text,label\n" + "\n".join(lines) + "\n")
    ids, _, bad = read_skipping(path, limit=8)
    assert ids == [0, 1, 2, 4, 5, 6, 7] and [b.line for b in bad] == [5]
    for chunk_rows in (1, 5, 100):  # the reader reads ahead up to a chunk
        assert read_all(path, limit=3, chunk_rows=chunk_rows)[0] == [0, 1, 2]
        with pytest.raises(BadRowError, match="a.csv:5: ragged row"):
            read_all(path, limit=4, chunk_rows=chunk_rows)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        SourceSpec((path,), limit=0)
