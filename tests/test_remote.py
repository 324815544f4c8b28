"""Datasets at URLs: uploaded manifest last, read through a local cache, against a real
S3 API on localhost (moto's server, started here)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

import ooc
from ooc.cli import main
from ooc.format import SHARDS_MANIFEST
from ooc.store.remote import upload
from tests.test_store_sharded import small_sharded

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch, tmp_path):
    """A fresh bucket; credentials and endpoint as a user would set them."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                        "OOC_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"b{os.urandom(6).hex()}"
    fs.mkdir(bucket)
    return fs, bucket


def cached_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def local_dataset(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / ("local.h5" if fmt == "hdf5" else "local")
    x = np.arange(300, dtype=np.float32).reshape(100, 3)
    with ooc.create(path, fmt) as w:
        w.set_metadata(classes=["a", "b"])
        w.append("train", x, np.arange(100) % 2)
        w.put_array("tag", np.array([7]))
    return path


@pytest.mark.parametrize("fmt", ["hdf5", "npy"])
def test_a_dataset_uploaded_reads_back_the_same(s3, tmp_path, fmt):
    _, bucket = s3
    local = local_dataset(tmp_path, fmt)
    upload(local, f"s3://{bucket}/ds")
    with ooc.open(f"s3://{bucket}/ds") as ds, ooc.open(local) as ref:
        np.testing.assert_array_equal(ds.train.x[:], ref.train.x[:])
        np.testing.assert_array_equal(ds.train.y[10:20], ref.train.y[10:20])
        assert ds.classes == ["a", "b"] and ds.extra("tag").tolist() == [7]
        assert str(ds.path) == f"s3://{bucket}/ds"
        ds.verify()
    assert cached_files(tmp_path)  # read from the cache


def test_a_sharded_dataset_fetches_only_the_parts_it_reads(s3, tmp_path):
    _, bucket = s3
    upload(small_sharded(tmp_path / "local", n_parts=4), f"s3://{bucket}/ds")
    with ooc.open(f"s3://{bucket}/ds") as ds:
        np.testing.assert_array_equal(ds.train.x[12:18].ravel(),
                                      np.arange(24, 36, dtype=np.float32))
        assert [n for n in cached_files(tmp_path) if n.startswith("part")] == ["part-00001.h5"]
        assert len(ds.train.x[:]) == 40 and ds.extra("tag").tolist() == [0]
        assert len([n for n in cached_files(tmp_path) if n.startswith("part")]) == 4


def test_a_dataset_replaced_at_its_url_is_fetched_anew(s3, tmp_path):
    _, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "v1", v=1), url)
    first = ooc.open(url)
    assert first.extra("tag").tolist() == [1]
    upload(small_sharded(tmp_path / "v2", v=2, n_parts=2), url, overwrite=True)
    with ooc.open(url) as second:
        assert second.extra("tag").tolist() == [2] and len(second.train) == 20
    # a part the first reader had not fetched yet is now the second's: refused, not mixed
    with pytest.raises(ooc.DatasetChangedError, match="replaced after it was opened"):
        first.train.x[0:1]
    first.close()
    with ooc.open(url) as again:
        assert again.train.x[0:1].tolist() == [[2000.0, 2001.0]]


def test_damage_in_the_bucket_is_found_when_read(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "local", "npy"), url)
    key = f"{bucket}/ds/train/part-00001/train/x.npy"
    data = bytearray(fs.cat_file(key))
    data[-5] ^= 0xFF
    fs.pipe(key, bytes(data))
    with ooc.open(url) as ds:
        ds.train.x[0:10]  # another part
        with pytest.raises(ooc.ChecksumError):
            ds.train.x[10:20]


def test_an_upload_without_its_manifest_is_not_a_dataset(s3, tmp_path):
    fs, bucket = s3
    local = small_sharded(tmp_path / "local")
    for path in sorted(local.rglob("*.h5")):  # the parts, as an upload stopped before the end
        fs.put_file(str(path), f"{bucket}/ds/{path.relative_to(local).as_posix()}")
    with pytest.raises(ooc.DatasetNotFoundError, match="no ooc dataset"):
        ooc.open(f"s3://{bucket}/ds")


def test_uploads_replace_only_ooc_datasets(s3, tmp_path):
    fs, bucket = s3
    url = f"s3://{bucket}/ds"
    upload(small_sharded(tmp_path / "v1", v=1), url)
    with pytest.raises(ooc.DatasetExistsError):
        upload(small_sharded(tmp_path / "v2", v=2), url)
    fs.pipe(f"{bucket}/ds/notes.txt", b"mine")
    with pytest.raises(ooc.OutputConflictError):
        upload(small_sharded(tmp_path / "v3", v=3), url, overwrite=True)
    assert fs.cat_file(f"{bucket}/ds/notes.txt") == b"mine"
    fs.pipe(f"{bucket}/mine.h5", b"not hdf5")
    with pytest.raises(ooc.OutputConflictError):
        upload(local_dataset(tmp_path, "hdf5"), f"s3://{bucket}/mine.h5", overwrite=True)
    assert fs.cat_file(f"{bucket}/mine.h5") == b"not hdf5"


def test_preprocess_writes_to_a_url(s3, textkit, tmp_path, capsys):
    fs, bucket = s3
    corpus = textkit.corpus("c.csv", docs=600, seed=49)
    args = [str(corpus), "--top-k", "300", "--workers", "2", "--quiet", "--shard-rows", "100",
            "--no-shuffle", "--chunk-rows", "50"]
    assert main(["preprocess", *args, "--out", str(tmp_path / "local")]) == 0
    assert main(["preprocess", *args, "--out", f"s3://{bucket}/ds"]) == 0
    assert f"wrote s3://{bucket}/ds" in capsys.readouterr().out
    manifest = json.loads(fs.cat_file(f"{bucket}/ds/{SHARDS_MANIFEST}"))
    assert len(manifest["splits"]["train"]["parts"]) >= 4
    assert not list((tmp_path / "cache" / "staging").rglob("*.h5"))  # the staging copy is gone
    textkit.assert_same(textkit.load(tmp_path / "local"), load_url(f"s3://{bucket}/ds"))
    assert main(["info", f"s3://{bucket}/ds"]) == 0


def load_url(url: str):
    from tests.conftest import Loaded, SplitData

    with ooc.open(url, verify="always") as ds:
        splits = {name: SplitData(s.x[:], np.asarray(s.y[:]), np.asarray(s.row_ids[:]))
                  for name, s in ds.splits.items()}
        return Loaded(ds.classes, ds.feature_names, splits, ds.vectorizer)
