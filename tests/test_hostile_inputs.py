"""Hostile inputs: each gives a clear error naming the file and line, or a counted skip.

A corpus of parametrized cases, one per way a user's input can be wrong
(a str where texts are expected, labels in several forms, a corpus without
words, a stray quote, a UTF-16 file, ...).  Every case asserts the error
class and what its message names, or that every source row is accounted for.
"""

from __future__ import annotations

import csv
import gzip
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from ooc import LabelFormWarning
from ooc.cli import main
from ooc.errors import BadRowError, CorpusError, InputFormatError, NotTextsError
from ooc.explore import explore
from ooc.preprocess import PreprocessConfig, preprocess
from ooc.text._common import escape
from ooc.text.ngram_vectorizer import NgramVectorizer
from ooc.text.sequence_vectorizer import SequenceVectorizer
from ooc.text.sources import RejectLog, SourceSpec, read_rows

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


# ------------------------------------------------------------------- labels
def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")
              ) -> Path:
    """A CSV of ``rows`` under a header, written with the csv module."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def labelled(labels: list[str], n: int = 40) -> list[tuple[str, str]]:
    """``n`` rows of short texts (every word in several rows), labels in turn."""
    return [(f"word{i % 5} common text {['alpha', 'beta'][i % 2]}", labels[i % len(labels)])
            for i in range(n)]


def run(tmp_path: Path, inputs: list[Path], **options: Any) -> Any:
    config = PreprocessConfig(inputs=tuple(map(str, inputs)), out=str(tmp_path / "out.h5"),
                              workers=1, progress=False, min_df=1, **options)
    return preprocess(config)


SAME_INTEGER = {
    "1 and 1.0": (["1", "1.0", "2"], "'1' and '1.0'"),
    "01 and 1": (["01", "1", "2"], "'01' and '1'"),
    "+1, 1e0 and 1": (["+1", "1e0", "1", "0"], "'+1' and '1' and '1e0'"),
    "-0 and 0": (["-0", "0", "7"], "'-0' and '0'"),
}


@pytest.mark.parametrize("case", SAME_INTEGER)
def test_labels_of_one_integer_in_several_forms_warn(tmp_path: Path, case: str) -> None:
    labels, listed = SAME_INTEGER[case]
    path = write_csv(tmp_path / "in.csv", labelled(labels))
    with pytest.warns(LabelFormWarning, match=re.escape(listed)) as caught:
        summary = run(tmp_path, [path])
    assert len(caught) == 1 and str(path) in str(caught[0].message)
    assert sorted(summary.classes) == sorted(labels)  # still exact strings


@pytest.mark.parametrize("case", SAME_INTEGER)
def test_strict_labels_stop_on_several_forms(tmp_path: Path, case: str) -> None:
    labels, listed = SAME_INTEGER[case]
    path = write_csv(tmp_path / "in.csv", labelled(labels))
    with pytest.raises(CorpusError, match=re.escape(listed)) as caught:
        run(tmp_path, [path], strict_labels=True)
    assert str(path) in str(caught.value)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("labels", [["1", "2", "10"], ["1.5", "1", "2"], ["pos", "neg"],
                                    ["1.0", "2.0"]])
def test_labels_in_one_form_do_not_warn(tmp_path: Path, labels: list[str]) -> None:
    path = write_csv(tmp_path / "in.csv", labelled(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelFormWarning)
        run(tmp_path, [path], strict_labels=True)


def test_label_forms_in_the_validation_input_are_reported(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", labelled(["0", "1"]))
    val = write_csv(tmp_path / "val.csv", labelled(["0", "1.0"], 10))
    with pytest.raises(CorpusError, match="'1' and '1.0'"):
        run(tmp_path, [train], val_inputs=(str(val),), strict_labels=True)


def test_cli_shows_the_label_warning_as_one_line(tmp_path: Path, capsys: Any) -> None:
    path = write_csv(tmp_path / "in.csv", labelled(["1", "1.0", "2"]))
    out = tmp_path / "out.h5"
    assert main(["preprocess", str(path), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ooc preprocess: warning: ")
    assert "'1' and '1.0'" in err[0] and "--strict-labels" in err[0]
    code = main(["preprocess", str(path), "--out", str(out), "--quiet", "--workers", "1",
                 "--overwrite", "--strict-labels"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("ooc preprocess: error: ")
    assert str(path) in err[0] and "'1' and '1.0'" in err[0]


def test_explore_and_vectorizer_fit_warn_about_label_forms(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", labelled(["01", "1"]))
    with pytest.warns(LabelFormWarning, match="'01' and '1'"):
        explore(SourceSpec(paths=(str(path),)), progress=False)
    for vec in (NgramVectorizer(min_df=1), SequenceVectorizer()):
        with pytest.warns(LabelFormWarning, match="'01' and '1'"):
            vec.fit([(TEXTS, ["01", "1"] * 3)])


def test_explore_orders_unicode_digit_labels_without_crashing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", labelled(["2", "\u00b2", "10"]))
    report = explore(SourceSpec(paths=(str(path),)), progress=False)
    assert list(report.class_counts) == ["10", "2", "\u00b2"]


# ----------------------------------------------------------- corpus without words
PUNCTUATION = [(["!!! ...", "?? -- !", "... ;;", "- / -"][i % 4], ["a", "b"][i % 2])
               for i in range(40)]
NO_TOKENS = r"no tokens: none of the (\d+) training texts holds (.+), so there is nothing"


@pytest.mark.parametrize("vectorizer", ["ngram", "sequence"])
def test_a_corpus_without_words_is_one_error_for_both_vectorizers(tmp_path: Path,
                                                                   vectorizer: str) -> None:
    path = write_csv(tmp_path / "punct.csv", PUNCTUATION)
    with pytest.raises(CorpusError, match=NO_TOKENS) as caught:
        run(tmp_path, [path], vectorizer=vectorizer, val_split=0)
    message = str(caught.value)
    assert message.startswith(f"{path}: no tokens: none of the 40 training texts holds a word")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("cls", [NgramVectorizer, SequenceVectorizer])
def test_fitting_texts_without_words_is_the_same_error(cls: type) -> None:
    texts, labels = map(list, zip(*PUNCTUATION, strict=True))
    with pytest.raises(CorpusError, match=NO_TOKENS.replace("(\\d+)", "40")):
        cls().fit([(texts, labels)])


def test_the_char_analyzer_finds_tokens_in_punctuation(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "punct.csv", PUNCTUATION)
    assert run(tmp_path, [path], analyzer="char", val_split=0).n_features > 0


# ------------------------------------------------------------- stray quotes
GOOD = [f"good row {i},{i % 2}" for i in range(8)]
STRAY_QUOTES = {
    # name: (lines after the header, 1-based lines listed as rejected); a stray
    # quote's record runs to the parser's error, each of its lines listed
    "to the end of the file": ([*GOOD[:3], '"stray start,1', *GOOD[3:]], [5, 6, 7, 8, 9, 10]),
    "closed by a later quote": ([*GOOD[:2], '"stray,1', *GOOD[2:5], '"quoted",0', *GOOD[5:]],
                                [4, 5, 6, 7, 8]),
    "over a ragged row": ([GOOD[0], '"stray,1', GOOD[1], "a,b,c", *GOOD[2:]], [*range(3, 12)]),
    "twice": ([GOOD[0], '"one,1', GOOD[1], '"two,0', *GOOD[2:]], [3, 4, 5]),
    "in a quoted field": ([GOOD[0], '"ok "so" far",1', *GOOD[1:]], [3]),
    # a real multi-line text with junk after its closing quote: its inner
    # lines are never read as rows (they would invent the label 'Loved it')
    "junk after a multi-line text": ([GOOD[0], '"Great movie.', "Loved it, 10/10",
                                      'Would watch again" !,1', *GOOD[1:]], [3, 4, 5]),
}


def read_with_rejects(path: Path, rejects: Path) -> tuple[list[int], list[str], list[dict]]:
    """Row ids and texts kept with on_bad_row='skip', and the rows of the rejects file."""
    ids: list[int] = []
    texts: list[str] = []
    with RejectLog(rejects) as log:
        for rows in read_rows(SourceSpec((str(path),), on_bad_row="skip"), 3, log):
            ids.extend(rows.row_ids.tolist())
            texts.extend(rows.texts)
    with open(rejects, newline="", encoding="utf-8") as f:
        return ids, texts, list(csv.DictReader(f))


@pytest.mark.parametrize("case", STRAY_QUOTES)
def test_a_stray_quote_loses_no_row_without_listing_it(tmp_path: Path, case: str) -> None:
    lines, rejected = STRAY_QUOTES[case]
    path = tmp_path / "stray.csv"
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    ids, texts, listed = read_with_rejects(path, tmp_path / "rejects.csv")
    assert [int(r["line"]) for r in listed] == rejected
    assert all(r["path"] == str(path) for r in listed)
    assert not [t for t in texts if not t.startswith("good row")], texts
    swallowed = [r["record"] for r in listed if r["record"].startswith("good row")]
    assert sorted(texts + [g.split(",")[0] for g in swallowed]) == [g.split(",")[0] for g in GOOD]
    # every source line is in a kept row or listed; rows take ids in source order
    assert sum(t.count("\n") + 1 for t in texts) + len(listed) == len(lines)
    last_kept = int(listed[-1]["line"]) < len(lines) + 1 if listed else True
    assert ids == sorted(set(ids)) and ids[-1] <= len(ids) + len(listed) - 1
    assert ids[-1] == len(ids) + len(listed) - 1 or not last_kept


def test_preprocess_counts_and_lists_every_row_a_stray_quote_swallowed(tmp_path: Path,
                                                                      capsys: Any) -> None:
    lines, _ = STRAY_QUOTES["to the end of the file"]
    path = tmp_path / "stray.csv"
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.h5"
    assert main(["preprocess", str(path), "--out", str(out), "--quiet", "--workers", "1",
                 "--min-df", "1", "--on-bad-row", "skip", "--val-split", "0"]) == 0
    summary = capsys.readouterr().out
    assert "skipped   6 bad rows" in summary and "rows      train 3" in summary
    with open(tmp_path / "out.h5.rejects.csv", newline="", encoding="utf-8") as f:
        listed = [(int(r["line"]), r["record"]) for r in csv.DictReader(f)]
    assert listed == list(zip(range(5, 11), lines[3:], strict=True))


# ------------------------------------------------------------ wide encodings
CSV_TEXT = "text,label\n" + "".join(f"review number {i},{i % 2}\n" for i in range(20))
JSONL_TEXT = "".join(f'{{"text": "review {i}", "label": {i % 2}}}\n' for i in range(20))
WIDE = {
    # name: (file name, bytes, what the message says, iconv's source encoding)
    "UTF-16 LE csv": ("in.csv", CSV_TEXT.encode("utf-16"), "UTF-16 LE byte order", "UTF-16"),
    "UTF-16 BE csv": ("in.csv", b"\xfe\xff" + CSV_TEXT.encode("utf-16-be"), "UTF-16 BE byte",
                      "UTF-16"),
    "UTF-32 LE csv": ("in.csv", CSV_TEXT.encode("utf-32"), "UTF-32 LE byte order", "UTF-32"),
    "UTF-32 BE csv": ("in.csv", b"\x00\x00\xfe\xff" + CSV_TEXT.encode("utf-32-be"),
                      "UTF-32 BE byte", "UTF-32"),
    "UTF-16 LE csv without a BOM": ("in.csv", CSV_TEXT.encode("utf-16-le"),
                                    "32 of its first 64 bytes are NUL", "UTF-16LE"),
    "UTF-16 BE tsv without a BOM": ("in.tsv", CSV_TEXT.replace(",", "\t").encode("utf-16-be"),
                                    "bytes are NUL", "UTF-16BE"),
    "UTF-16 jsonl": ("in.jsonl", JSONL_TEXT.encode("utf-16"), "UTF-16 LE byte", "UTF-16"),
    "UTF-16 csv.gz": ("in.csv.gz", gzip.compress(CSV_TEXT.encode("utf-16")), "UTF-16 LE",
                      "UTF-16"),
}


@pytest.mark.parametrize("case", WIDE)
def test_utf16_and_utf32_inputs_say_to_convert(tmp_path: Path, capsys: Any, case: str) -> None:
    name, data, why, source = WIDE[case]
    path = tmp_path / name
    path.write_bytes(data)
    for on_bad_row in ("error", "skip"):
        with pytest.raises(InputFormatError) as caught:
            list(read_rows(SourceSpec((str(path),), on_bad_row=on_bad_row)))
        message = str(caught.value)
        assert message.startswith(f"{path}: the file looks {source[:6]} encoded")
        assert why in message and f"iconv -f {source} -t UTF-8" in message
        assert f"Pass --encoding {source} " in message
        assert "\x00" not in message
    rows = list(read_rows(SourceSpec((str(path),), encoding=source)))  # as the message says
    assert sum(len(r) for r in rows) == 20 and rows[0].texts[0].startswith("review")
    assert main(["preprocess", str(path), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x00" not in err and "iconv" in err


def test_a_utf16_document_in_a_folder_tree_is_a_bad_row_naming_it(tmp_path: Path) -> None:
    for label, n in (("pos", 0), ("neg", 1)):
        (tmp_path / "tree" / label).mkdir(parents=True)
        (tmp_path / "tree" / label / f"{n}.txt").write_text(f"a {label} review\n")
    wide = tmp_path / "tree" / "neg" / "2.txt"
    wide.write_bytes("a wide review\n".encode("utf-16"))
    spec = SourceSpec((str(tmp_path / "tree"),))
    with pytest.raises(BadRowError, match=f"^{re.escape(str(wide))}:1: the file looks UTF-16"):
        list(read_rows(spec))
    _, texts, listed = read_with_rejects(tmp_path / "tree", tmp_path / "rejects.csv")
    assert texts == ["a neg review\n", "a pos review\n"]
    assert [(r["path"], r["line"]) for r in listed] == [(str(wide), "1")]
    assert "\x00" not in listed[0]["record"] and "iconv -f UTF-16" in listed[0]["reason"]


CONTROL_HEADERS = {
    "NUL": "te\x00xt,label\n",
    "escape sequence": "\x1b[2Jtext,label\n",
    "quoted carriage return and bell": '"te\rx\x07t",label\n',
    "invalid UTF-8": "t\udcffext,label\n",
}


@pytest.mark.parametrize("case", CONTROL_HEADERS)
def test_errors_quoting_user_text_escape_control_characters(tmp_path: Path, capsys: Any,
                                                            case: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes((CONTROL_HEADERS[case] + "some text,1\n").encode("utf-8", "surrogateescape"))
    assert main(["preprocess", str(path), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no column named 'text'" in err and "Available columns: '" in err
    assert err.count("\n") == 1 and err.isprintable() is False  # only the final newline
    assert err[:-1].isprintable() and "\\x" in err


def test_escape_shows_controls_and_undecodable_bytes_as_escapes() -> None:
    assert escape("a\x00b\x1b[2J\r\n\t\u202e\x85") == "a\\x00b\\x1b[2J\\x0d\\x0a\\x09\\u202e\\x85"
    assert escape("caf\udce9 ok") == "caf\\xe9 ok"
    assert escape("plain, ünïcode 文字") == "plain, ünïcode 文字"


def test_a_path_with_control_characters_is_escaped_in_the_error_line(tmp_path: Path,
                                                                    capsys: Any) -> None:
    odd = tmp_path / "no\x1b[31mred\x07.txt"
    odd.write_text("text,label\n")
    assert main(["preprocess", str(odd), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no\\x1b[31mred\\x07.txt: unsupported input kind" in err and err[:-1].isprintable()


def test_the_summary_escapes_labels_with_control_characters(tmp_path: Path,
                                                            capsys: Any) -> None:
    path = write_csv(tmp_path / "in.csv", labelled(["\x1b[2Jpos", "neg\x07"]))
    assert main(["preprocess", str(path), "--out", str(tmp_path / "o.h5"), "--quiet",
                 "--workers", "1", "--min-df", "1"]) == 0
    out = capsys.readouterr().out
    assert "classes   2: \\x1b[2Jpos, neg\\x07" in out and "\x1b" not in out


# ------------------------------------------------------------- empty corpora
EMPTY = {
    "header only": "text,label\n",
    "empty file": "",
    "every row bad": "text,label\n,1\nsome text,\n",
}


@pytest.mark.parametrize("case", EMPTY)
def test_no_training_rows_names_the_input(tmp_path: Path, case: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(EMPTY[case])
    with pytest.raises(CorpusError, match=f"^{re.escape(str(path))}: no training rows"):
        run(tmp_path, [path], on_bad_row="skip")


def test_labels_with_absurd_exponents_are_plain_labels() -> None:
    from ooc.text.labels import form_groups

    huge = ["1E+99999999999999999999999", "1e-99999999999999999999", "1", "1e0"]
    assert form_groups(huge) == [["1", "1e0"]]
