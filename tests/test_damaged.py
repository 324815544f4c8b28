"""Damaged datasets: every damage is an ``OocError`` naming the file, never wrong data.

A corpus of damaged datasets for both backends (truncations, header and
dtype edits, deleted and swapped arrays, edited manifests), each asserted
from the API, ``ooc verify`` and ``ooc info``; then byte flips over the
metadata of each backend, each of which must be found or be harmless.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

import ooc
from ooc.cli import main
from ooc.format import dump_manifest
from tests.store_suite import sparse_rows
from tests.test_store_hdf5 import flip_byte


def build(path: Path, fmt: str) -> Path:
    """Dense int32 train, CSR float32 val of as many rows, an extra array; three classes."""
    rng = np.random.default_rng(0)
    with ooc.create(path, fmt) as w:
        w.set_metadata(classes=["a", "b", "c"])
        w.append("train", rng.integers(-50, 50, (300, 5)).astype(np.int32), np.arange(300) % 3)
        w.append("val", sparse_rows(300, 40, seed=1), np.arange(300) // 150)
        w.put_array("vectorizer/selected_idf", rng.random(50))
    return path


def snapshot(path: Path) -> dict[str, np.ndarray]:
    """Every value the dataset at ``path`` reads back, after a full verify."""
    with ooc.open(path, verify="always") as ds:
        ds.verify()
        out = {f"extra/{name}": ds.extra(name) for name in ds.extras}
        for name, split in ds.splits.items():
            x = split.x[:]
            out[f"{name}/x"] = x.toarray() if split.is_sparse else x
            out[f"{name}/y"] = split.y[:]
            out[f"{name}/row_ids"] = split.row_ids[:]
        out["classes"] = np.asarray(ds.classes)
    return out


def replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) >= 1 and len(old) == len(new), (path, old)
    path.write_bytes(data.replace(old, new, 1))


def edit_npy_header(path: Path, old: str, new: str) -> None:
    """Replace text in a .npy header, padding with spaces to keep its length."""
    replace_bytes(path, old.encode(), new.ljust(len(old)).encode() if len(new) <= len(old)
                  else new.encode()[: len(old)])


def edit_manifest(path: Path, change: Callable[[dict], None], *, recompute: bool = True) -> None:
    """Edit an npy or HDF5 manifest, with its checksum made to match again."""
    if path.is_dir():
        manifest = json.loads((path / "ooc.json").read_text())
    else:
        with h5py.File(path, "r") as f:
            manifest = json.loads(f["ooc_manifest"][()])
    change(manifest)
    text = dump_manifest({k: v for k, v in manifest.items() if k != "checksum"}) if recompute \
        else json.dumps(manifest)
    if path.is_dir():
        (path / "ooc.json").write_text(text)
    else:
        with h5py.File(path, "r+") as f:
            del f["ooc_manifest"]
            f.create_dataset("ooc_manifest", data=text, dtype=h5py.string_dtype())


def swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    os.replace(a, tmp)
    os.replace(b, a)
    os.replace(tmp, b)


def _truncate(name: str, size: int) -> Callable[[Path], None]:
    return lambda p: os.truncate(p / name, size)


def _set(*keys: str, value: object) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        if value is KeyError:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
    return change


def _swap_y(p: Path) -> None:
    swap(p / "train" / "y.npy", p / "val" / "y.npy")
    swap(p / "train" / "y.crc32c.npy", p / "val" / "y.crc32c.npy")


def _rename_split(manifest: dict) -> None:
    manifest["splits"]["../../elsewhere"] = manifest["splits"].pop("train")


DAMAGED = ooc.DamagedDatasetError
NPY_DAMAGES: dict[str, tuple[Callable[[Path], None], type]] = {
    "x dtype <i4 -> <u4": (lambda p: edit_npy_header(p / "train/x.npy", "'<i4'", "'<u4'"),
                           DAMAGED),
    "csr data <f4 -> <i4": (lambda p: edit_npy_header(p / "val/x/data.npy", "'<f4'", "'<i4'"),
                            DAMAGED),
    "y <i8 -> >i8": (lambda p: edit_npy_header(p / "train/y.npy", "'<i8'", "'>i8'"), DAMAGED),
    "x shape edited": (lambda p: edit_npy_header(p / "train/x.npy", "(300, 5)", "(299, 5)"),
                       DAMAGED),
    "extra length absurd": (lambda p: edit_npy_header(
        p / "extra/vectorizer/selected_idf.npy", "(50,), }" + " " * 10, "(846108565737,), }"),
        DAMAGED),
    "fortran order": (lambda p: edit_npy_header(p / "train/x.npy", "False", "True"), DAMAGED),
    "header not a dict": (lambda p: edit_npy_header(p / "train/y.npy", "{'descr'", "['descr'"),
                          DAMAGED),
    "header keys wrong": (lambda p: edit_npy_header(p / "train/y.npy", "'fortran_order'",
                                                    "'fortran_ordex'"), DAMAGED),
    "header token error": (lambda p: edit_npy_header(p / "train/y.npy", "{'descr'", "{'descr "),
                           DAMAGED),
    "magic string": (lambda p: replace_bytes(p / "train/y.npy", b"\x93NUMPY", b"\x93NUMPZ"),
                     DAMAGED),
    "header cut": (_truncate("train/y.npy", 40), DAMAGED),
    "empty file": (_truncate("train/x.npy", 0), DAMAGED),
    "data cut": (_truncate("train/x.npy", 128 + 299 * 20), DAMAGED),
    "y deleted": (lambda p: (p / "train/y.npy").unlink(), DAMAGED),
    "checksums deleted": (lambda p: (p / "train/y.crc32c.npy").unlink(), DAMAGED),
    "checksums dtype": (lambda p: edit_npy_header(p / "train/x.crc32c.npy", "'<u4'", "'>u4'"),
                        DAMAGED),
    "y swapped with val/y": (_swap_y, ooc.ChecksumError),
    "manifest lacks x": (lambda p: edit_manifest(p, _set("splits", "train", "x", value=KeyError)),
                         DAMAGED),
    "manifest n_rows + 5": (lambda p: edit_manifest(
        p, _set("splits", "train", "n_rows", value=lambda n: n + 5)), DAMAGED),
    "manifest split name leaves the directory": (lambda p: edit_manifest(p, _rename_split),
                                                 DAMAGED),
    "manifest dtype bogus": (lambda p: edit_manifest(
        p, _set("splits", "train", "x", "dtype", value="<q9")), DAMAGED),
    "manifest arrays entry missing": (lambda p: edit_manifest(
        p, _set("arrays", "train/y", value=KeyError)), DAMAGED),
    "manifest block_rows zero": (lambda p: edit_manifest(
        p, _set("arrays", "train/y", "block_rows", value=0)), DAMAGED),
    "manifest label counts": (lambda p: edit_manifest(
        p, _set("splits", "train", "label_counts", value=["x"])), DAMAGED),
    "manifest checksum stale": (lambda p: edit_manifest(
        p, _set("splits", "train", "n_rows", value=1), recompute=False), ooc.ChecksumError),
    "manifest cut": (lambda p: os.truncate(p / "ooc.json", 200), ooc.DamagedDatasetError),
    "manifest deleted": (lambda p: (p / "ooc.json").unlink(), ooc.NotADatasetError),
}


def _h5(edit: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            edit(f)
    return damage


def flip_byte_bits(path: Path, offset: int, mask: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ mask]))


HDF5_DAMAGES: dict[str, tuple[Callable[[Path], None], type]] = {
    "y deleted": (_h5(lambda f: f.__delitem__("train/y")), DAMAGED),
    "x shape edited": (_h5(lambda f: f["train/x"].resize(299, axis=0)), DAMAGED),
    "extra length absurd": (_h5(lambda f: f["extra/vectorizer/selected_idf"].resize(
        (846_108_565_737,))), DAMAGED),
    "manifest n_rows + 5": (lambda p: edit_manifest(
        p, _set("splits", "train", "n_rows", value=lambda n: n + 5)), DAMAGED),
    "manifest lacks x": (lambda p: edit_manifest(p, _set("splits", "train", "x", value=KeyError)),
                         DAMAGED),
    "manifest chunk_rows edited": (lambda p: edit_manifest(
        p, _set("arrays", "train/x", "chunk_rows", value=lambda n: n // 2)), DAMAGED),
    "manifest not JSON": (lambda p: edit_manifest(p, lambda m: m.clear(), recompute=False),
                          ooc.NotADatasetError),
    "manifest deleted": (_h5(lambda f: f.__delitem__("ooc_manifest")),
                         ooc.IncompleteDatasetError),
    "root attribute deleted": (_h5(lambda f: f.attrs.__delitem__("ooc_format")),
                               ooc.NotADatasetError),
    "file cut in half": (lambda p: os.truncate(p, p.stat().st_size // 2), DAMAGED),
    "file cut to 100 bytes": (lambda p: os.truncate(p, 100), DAMAGED),
}

CASES = [pytest.param("npy", name, id=f"npy-{name}") for name in NPY_DAMAGES] + [
    pytest.param("hdf5", name, id=f"hdf5-{name}") for name in HDF5_DAMAGES]


@pytest.mark.parametrize(("fmt", "damage"), CASES)
def test_damage_is_an_ooc_error_naming_the_file(tmp_path, capsys, fmt, damage):
    path = build(tmp_path / ("d.h5" if fmt == "hdf5" else "d"), fmt)
    snapshot(path)  # reads cleanly before the damage
    do, error = (NPY_DAMAGES if fmt == "npy" else HDF5_DAMAGES)[damage]
    do(path)
    with pytest.raises(error, match=re.escape(str(path))):
        snapshot(path)
    for command in ("verify", "info"):
        assert main([command, str(path)]) == 1, command
        err = capsys.readouterr().err
        assert err.startswith(f"ooc {command}: error: ") and err.count("\n") == 1, err
        assert str(path) in err and "Traceback" not in err


def test_swapped_labels_of_a_dataset_without_digests_fail_verify(tmp_path, capsys):
    # Datasets written before the manifest had block checksum digests: the
    # label counts in the manifest still tell a swapped y.
    path = build(tmp_path / "d", "npy")

    def drop_digests(manifest: dict) -> None:
        for layout in manifest["arrays"].values():
            del layout["checksums"]

    edit_manifest(path, drop_digests)
    snapshot(path)
    _swap_y(path)
    with ooc.open(path) as ds:
        np.testing.assert_array_equal(ds.train.y[:3], [0, 0, 0])  # val's labels, undetected
    assert main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert "train/y.npy" not in err and "'train', array 'y'" in err and "label" in err


def test_byte_order_flips_of_hdf5_datatypes_are_found(tmp_path):
    # The big-endian bit of each int64 datatype message (HDF5 spec IV.A.2.d);
    # object headers carry checksums, so each flip is a damaged file.
    path = build(tmp_path / "d.h5", "hdf5")
    message = b"\x10\x08\x00\x00\x08\x00\x00\x00\x00\x00\x40\x00"
    where = [m.start() for m in re.finditer(re.escape(message), path.read_bytes())]
    for offset in where:
        flip_byte_bits(path, offset + 1, 0x01)
        with pytest.raises(ooc.OocError, match=re.escape(str(path))):
            snapshot(path)
        flip_byte_bits(path, offset + 1, 0x01)
    assert len(where) >= 3


def test_hdf5_array_of_another_dtype_than_the_manifest_is_refused(tmp_path):
    # The same values stored big-endian: readable, checksums of the bytes
    # rewritten to match, and still not what the manifest says was written.
    path = build(tmp_path / "d.h5", "hdf5")
    with h5py.File(path, "r+") as f:
        values = f["train/y"][()]
        del f["train/y"]
        f.create_dataset("train/y", data=values.astype(">i8"))
    with pytest.raises(ooc.DamagedDatasetError, match=r"'train', array 'y'.*<i8.*>i8"):
        ooc.open(path)


def metadata_offsets(path: Path, fmt: str) -> list[Path | int]:
    """Where a flip damages metadata: npy header and checksum bytes; HDF5 outside chunks."""
    if fmt == "npy":
        out: list = []
        for file in sorted(path.rglob("*.npy")):
            length = file.stat().st_size if file.name.endswith(".crc32c.npy") else 128
            out += [(file, k) for k in range(length)]
        return out
    data = np.frombuffer(path.read_bytes(), np.uint8)
    in_chunk = np.zeros(len(data), bool)
    with h5py.File(path, "r") as f:
        def mark(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.chunks:
                obj.id.chunk_iter(lambda c: in_chunk.__setitem__(
                    slice(c.byte_offset, c.byte_offset + c.size), True))
        f.visititems(mark)
    candidates = np.flatnonzero(~in_chunk & (data != 0))
    return [(path, int(k)) for k in candidates]


FOUND, HARMLESS, WRONG, RAW = 0, 1, 2, 3


def flip_outcome(path: Path, clean: dict[str, np.ndarray]) -> int:
    """Read the damaged dataset in a forked child, so a crash or hang of libhdf5
    is a test failure rather than the end of the test run."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child exits without returning
        code = RAW
        try:
            signal.alarm(10)
            got = snapshot(path)
            same = got.keys() == clean.keys() and all(
                np.array_equal(got[k], v) and got[k].dtype == v.dtype for k, v in clean.items())
            code = HARMLESS if same else WRONG
        except ooc.OocError:
            code = FOUND
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("fmt", ["npy", "hdf5"])
def test_metadata_byte_flips_are_found_or_harmless(tmp_path, fmt):
    path = build(tmp_path / ("d.h5" if fmt == "hdf5" else "d"), fmt)
    clean = snapshot(path)
    offsets = metadata_offsets(path, fmt)
    rng = np.random.default_rng(7)
    picked = [offsets[k] for k in rng.choice(len(offsets), min(400, len(offsets)), replace=False)]
    outcomes: dict[int, list] = {}
    for file, offset in picked:
        flip_byte(file, offset)
        outcomes.setdefault(flip_outcome(path, clean), []).append((str(file), offset))
        flip_byte(file, offset)
    # anything but found or harmless: silently wrong data, a raw error, a crash (-signal)
    bad = {code: where for code, where in outcomes.items() if code not in (FOUND, HARMLESS)}
    assert not bad, bad
    assert len(outcomes.get(FOUND, [])) > len(picked) // 4, outcomes.keys()
