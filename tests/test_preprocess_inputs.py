"""``ooc preprocess`` and ``ooc explore`` on real-world inputs: text encodings and the
decoding of invalid bytes.

Reader-level cases (every format, odd bytes) are in ``tests/test_sources.py``; here the
options go through the command line and the resume fingerprint to a whole dataset.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import ooc.preprocess
from ooc.cli import main
from ooc.errors import ResumeError

QUICK = ["--workers", "1", "--quiet", "--chunk-rows", "128"]
ACCENTS = ["café", "crème", "naïve", "señor", "Ünïcödé", "œuvre", "“quoted”", "5 €", "dash \u2013"]


def accented_corpus(textkit, n: int = 300) -> tuple[list[str], list[str]]:
    """``n`` documents, each with a word outside ASCII that cp1252 can encode."""
    texts, labels = textkit.docs(n, seed=51)
    return [f"{t} {ACCENTS[i % len(ACCENTS)]}" for i, t in enumerate(texts)], labels


def reencoded(textkit, utf8: Path, name: str, encoding: str) -> Path:
    """A copy of the UTF-8 file ``utf8`` in ``encoding`` (gzip-compressed for ``.gz``)."""
    data = utf8.read_text(encoding="utf-8").encode(encoding)
    path = textkit.tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize(("name", "encoding"), [
    ("c.csv", "cp1252"), ("c.csv.gz", "cp1252"), ("c.csv", "utf-16")])
def test_an_encoded_file_gives_the_same_dataset_as_its_utf8_version(textkit, name, encoding):
    texts, labels = accented_corpus(textkit)
    utf8 = textkit.write_csv("utf8.csv", texts, labels)
    textkit.preprocess(utf8, out="utf8.h5", top_k=100_000, chunk_rows=128)  # every n-gram
    other = reencoded(textkit, utf8, name, encoding)
    out = textkit.tmp_path / "other.h5"
    assert main(["preprocess", str(other), "--out", str(out), "--encoding", encoding,
                 "--top-k", "100000", *QUICK]) == 0
    first, second = textkit.load("utf8.h5"), textkit.load("other.h5")
    textkit.assert_same(first, second)
    assert {"cafe", "naive", "œuvre"} <= set(first.feature_names)  # accents stripped


def test_latin1_through_the_python_api(textkit):
    texts, labels = textkit.docs(300, seed=52)
    texts = [f"{t} {['café', 'naïve', 'señor'][i % 3]}" for i, t in enumerate(texts)]
    utf8 = textkit.write_csv("utf8.csv", texts, labels)
    latin1 = reencoded(textkit, utf8, "latin1.csv", "latin-1")
    textkit.preprocess(utf8, out="utf8.h5", top_k=400)
    textkit.preprocess(latin1, out="latin1.h5", top_k=400, encoding="latin-1")
    textkit.assert_same(textkit.load("utf8.h5"), textkit.load("latin1.h5"))


def test_invalid_utf8_stops_under_strict_and_is_kept_under_replace(textkit, capsys):
    texts, labels = textkit.docs(200, seed=53)
    path = textkit.write_csv("c.csv", texts, labels)
    lines = path.read_bytes().split(b"\n")
    lines[7] = lines[7].replace(b" ", b" caf\xe9 ", 1)  # in the text of line 8
    path.write_bytes(b"\n".join(lines))
    out = textkit.tmp_path / "out.h5"
    assert main(["preprocess", str(path), "--out", str(out), *QUICK]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: invalid UTF-8: byte 0xe9" in err and err.count("\n") == 1
    assert main(["preprocess", str(path), "--out", str(out), "--decode-errors", "replace",
                 *QUICK]) == 0
    assert "skipped" not in capsys.readouterr().out
    loaded = textkit.load("out.h5")
    assert sum(len(s.row_ids) for s in loaded.splits.values()) == 200
    assert not (textkit.tmp_path / "out.h5.rejects.csv").exists()


def test_explore_reads_the_same_options(textkit, capsys):
    texts, labels = accented_corpus(textkit, 120)
    utf8 = textkit.write_csv("utf8.csv", texts, labels)
    other = reencoded(textkit, utf8, "c.csv", "cp1252")
    reports = []
    for path, options in ((utf8, []), (other, ["--encoding", "cp1252"])):
        report = textkit.tmp_path / f"{path.stem}.json"
        assert main(["explore", str(path), "--quiet", "--json", str(report), *options]) == 0
        reports.append({k: v for k, v in json.loads(report.read_text()).items()
                        if k not in ("inputs", "elapsed_s", "rows_per_s")})
    assert reports[0] == reports[1]
    other.write_bytes(other.read_bytes().replace("“".encode("cp1252"), b"\x81"))
    assert main(["explore", str(other), "--quiet", "--encoding", "cp1252"]) == 1
    assert "invalid cp1252: byte 0x81" in capsys.readouterr().err
    assert main(["explore", str(other), "--quiet", "--encoding", "cp1252",
                 "--decode-errors", "replace"]) == 0


def test_resume_with_other_reading_options_is_refused(textkit):
    texts, labels = accented_corpus(textkit, 100)
    path = textkit.write_csv("c.csv", texts, labels)
    out = textkit.tmp_path / "out.h5"
    config = textkit.config(path, encoding="cp1252")
    ooc.preprocess.WorkDir(out, config.fingerprint(), resume=False)  # an interrupted run
    for options in ({"encoding": "utf-8"}, {"encoding": "cp1252", "decode_errors": "replace"},
                    {"encoding": "cp1252", "limit": 50}):
        with pytest.raises(ResumeError, match="other settings"):
            ooc.preprocess.preprocess(textkit.config(path, resume=True, **options))


def test_unknown_encoding_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("text,label\na,1\n")
    assert main(["preprocess", str(path), "--out", str(tmp_path / "o.h5"),
                 "--encoding", "klingon"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encoding 'klingon' is not a text encoding" in err


# ------------------------------------------------------------------ parquet
@pytest.mark.parametrize("integer_labels", [False, True])
def test_parquet_with_several_row_groups_gives_the_same_dataset_as_csv(textkit, capsys,
                                                                       integer_labels):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, labels = accented_corpus(textkit, 400)
    if integer_labels:
        labels = [str(10 - int(y.rsplit("_", 1)[-1])) for y in labels]  # '10', '9', '8', ...
    table = pa.table({"label": [int(y) for y in labels] if integer_labels else labels,
                      "review": texts})
    path = textkit.tmp_path / "c.parquet"
    pq.write_table(table, path, row_group_size=37)
    assert pq.ParquetFile(path).metadata.num_row_groups == 11
    csv_path = textkit.write_csv("c.csv", texts, labels)
    textkit.preprocess(csv_path, out="csv.h5", top_k=2000, chunk_rows=128)
    out = textkit.tmp_path / "parquet.h5"
    assert main(["preprocess", str(path), "--out", str(out), "--text-column", "review",
                 "--top-k", "2000", *QUICK]) == 0
    textkit.assert_same(textkit.load("csv.h5"), textkit.load("parquet.h5"))
    if integer_labels:
        assert textkit.load("parquet.h5").classes == sorted(set(labels), key=int)
    report = textkit.tmp_path / "report.json"
    assert main(["explore", str(path), "--text-column", "review", "--quiet",
                 "--json", str(report)]) == 0
    assert "ooc explore: 400 samples from 1 input(s)" in capsys.readouterr().out
    assert list(json.loads(report.read_text())["class_counts"]) == textkit.load(
        "parquet.h5").classes


def test_parquet_null_rows_are_skipped_and_listed_by_row_number(textkit, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, labels = textkit.docs(100, seed=54)
    texts[10], labels[20] = None, None
    path = textkit.tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": texts, "label": labels}), path, row_group_size=16)
    out = textkit.tmp_path / "out.h5"
    assert main(["preprocess", str(path), "--out", str(out), *QUICK]) == 1
    assert f"{path}:11: empty text: column 'text' is null" in capsys.readouterr().err
    assert main(["preprocess", str(path), "--out", str(out), "--on-bad-row", "skip",
                 *QUICK]) == 0
    assert "skipped   2 bad rows" in capsys.readouterr().out
    with open(f"{out}.rejects.csv", encoding="utf-8") as f:
        assert [line.split(",")[1] for line in f.read().splitlines()[1:]] == ["11", "21"]


# ------------------------------------------------------------------ limit
def test_limit_gives_the_dataset_of_the_first_rows(textkit, capsys):
    texts, labels = textkit.docs(400, seed=55)
    whole = textkit.write_csv("whole.csv", texts, labels)
    first = textkit.write_csv("first.csv", texts[:150], labels[:150])
    textkit.preprocess(first, out="first.h5", top_k=500, chunk_rows=128)
    out = textkit.tmp_path / "limited.h5"
    assert main(["preprocess", str(whole), "--out", str(out), "--limit", "150",
                 "--top-k", "500", *QUICK]) == 0
    textkit.assert_same(textkit.load("first.h5"), textkit.load("limited.h5"))
    assert main(["explore", str(whole), "--limit", "150", "--quiet"]) == 0
    assert "ooc explore: 150 samples" in capsys.readouterr().out
    assert main(["preprocess", str(whole), "--out", str(out), "--limit", "0"]) == 2
    assert "--limit: expected an integer >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------ class order
@pytest.mark.parametrize(("classes", "expected"), [
    (["+1", "-1", "10", "2"], ["-1", "+1", "2", "10"]),  # integers: by value
    (["²", "2", "10"], ["10", "2", "²"]),  # '²' is a digit but no integer: code point order
])
def test_explore_and_preprocess_order_classes_alike(textkit, classes, expected):
    texts, _ = textkit.docs(200, seed=56)
    labels = [classes[i % len(classes)] for i in range(len(texts))]
    path = textkit.write_csv("c.csv", texts, labels)
    report = textkit.tmp_path / "report.json"
    assert main(["explore", str(path), "--quiet", "--json", str(report)]) == 0
    assert list(json.loads(report.read_text())["class_counts"]) == expected
    textkit.preprocess(path, top_k=300)
    assert textkit.load("out.h5").classes == expected
