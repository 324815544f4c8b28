"""A fitted vectorizer on its own: :func:`save_vectorizer` and :func:`load_vectorizer`.

Predicting needs only the vectorizer, not the dataset it made.  The file is
a plain ``.npz`` (``np.load(path)`` lists it) holding:

* ``header``: UTF-8 JSON ``{"format": "ooc-vectorizer", "version": 1,
  "settings": {...}, "sha256": "..."}`` as a uint8 array; ``settings`` are
  the vectorizer's (``kind`` first among them);
* ``array/<name>``: every array of the vectorizer's ``to_arrays()``.

``sha256`` covers the settings and every array's name, dtype, shape and
bytes, so a damaged or mixed-up file is refused when loaded, not used.
The file is written to a temporary beside ``path`` and renamed over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VectorizerFileError
from ..store._atomic import fsync_path

FORMAT_NAME = "ooc-vectorizer"
FORMAT_VERSION = 1
_PREFIX = "array/"


def rebuild_vectorizer(settings: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """The fitted vectorizer that ``to_arrays()`` gave ``settings`` and ``arrays``."""
    kind = settings.get("kind")
    if kind == "ngram":
        from .ngram_vectorizer import NgramVectorizer

        return NgramVectorizer.from_arrays(settings, arrays)
    if kind == "sequence":
        from .sequence_vectorizer import SequenceVectorizer

        return SequenceVectorizer.from_arrays(settings, arrays)
    raise ValueError(f"unknown vectorizer kind {kind!r}; this ooc reads 'ngram' and 'sequence'.")


def _digest(settings: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_vectorizer(vec: Any, path: str | Path) -> Path:
    """Write fitted ``vec`` to ``path`` (``.npz`` appended when missing); return the path."""
    settings, arrays = vec.to_arrays()
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "settings": settings,
              "sha256": _digest(settings, arrays)}
    final = Path(path)
    if final.suffix != ".npz":
        final = final.with_name(final.name + ".npz")
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                     **{_PREFIX + k: v for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_path(final.parent)  # the rename itself survives a crash
    finally:
        tmp.unlink(missing_ok=True)
    return final


def load_vectorizer(path: str | Path) -> Any:
    """Load a vectorizer written by ``vec.save(path)``, checking its checksum.

    Raises :class:`~ooc.errors.VectorizerFileError` when the file is not one,
    is damaged, or was written by a newer ooc; ``FileNotFoundError`` when
    there is no file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(npz["header"].tobytes().decode())
            arrays = {k[len(_PREFIX):]: npz[k] for k in npz.files if k.startswith(_PREFIX)}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise VectorizerFileError(f"{path}: not a readable ooc vectorizer file ({exc}). Save "
                                  "the vectorizer again with vec.save(path).") from None
    settings = _check_header(path, header, arrays)
    return rebuild_vectorizer(settings, arrays)


def _check_header(path: Path, header: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The settings of a checked header; raise for anything else."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise VectorizerFileError(f"{path}: expected an {FORMAT_NAME} file; got another .npz.")
    if header.get("version") != FORMAT_VERSION:
        raise VectorizerFileError(
            f"{path}: vectorizer file version {header.get('version')!r}; this ooc reads "
            f"version {FORMAT_VERSION}. Upgrade ooc or save the vectorizer again.")
    settings = header.get("settings")
    if not isinstance(settings, dict) or header.get("sha256") != _digest(settings, arrays):
        raise VectorizerFileError(f"{path}: the checksum does not match the contents; the "
                                  "file is damaged. Save the vectorizer again.")
    return settings


class SavedVectorizer:
    """``save`` and ``fit_transform`` for the vectorizers (they give ``to_arrays``)."""

    def save(self, path: str | Path) -> Path:
        """Write this fitted vectorizer to ``path`` (an ``.npz``); ``ooc.load_vectorizer``
        reads it back.  Returns the path written."""
        return save_vectorizer(self, path)

    def fit_transform(self, chunks: Any, **kwargs: Any) -> Any:
        """Fit on ``chunks`` (as :meth:`fit`), then transform their texts, stacked.

        The whole result is held in memory; transform chunk by chunk for more.
        """
        again = chunks if callable(chunks) else (lambda: chunks)
        self.fit(again, **kwargs)  # type: ignore[attr-defined]
        parts = [self.transform(texts) for texts, _ in again()]  # type: ignore[attr-defined]
        if parts and not isinstance(parts[0], np.ndarray):
            import scipy.sparse

            return scipy.sparse.vstack(parts, format="csr")
        return np.concatenate(parts)
