"""Keras callback: back up training mid-epoch and resume with exactly the batches to come.

Keras' own ``BackupAndRestore`` restores the epoch only: a run stopped at
batch 37 trains on that epoch's first 37 batches twice.  This one keeps,
beside the weights, where :class:`~ooc.keras_dataset.KerasBatches` was (the
state of :meth:`ooc.batching.BatchReader.state`), and a resumed ``fit``
trains on the rest of that epoch, then on whole epochs, in the order an
uninterrupted run takes.

Files in ``backup_dir`` (nothing else there is touched):

* ``ooc-backup-<epoch>-<position>-<id>.weights.h5``: the model's and
  optimizer's variables (``model.save_weights``), a new name each time;
* ``ooc-backup.json``: the commit point, written under a temporary name and
  renamed over the previous one once the weights are durable: the weights
  file's name and CRC-32C, Keras' epoch, and the batches' state.  A backup
  is the pair it names, so a kill at any step leaves the previous pair or
  the new one; files no state names (a killed save's) are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

import crc32c

from ._tensorflow import import_keras
from .errors import OocError
from .keras_dataset import KerasBatches
from .store._atomic import fsync_path

keras = import_keras()

STATE_NAME = "ooc-backup.json"
FORMAT = {"format": "ooc-backup", "version": 1}
_OURS = re.compile(r"ooc-backup-\d+-\d+-[0-9a-f]+\.weights\.h5|ooc-backup\.json\.tmp-[0-9a-f]+")
_RAN_OUT = "Your input ran out of data"  # what Keras says when the resumed epoch ends
_QUIETED: list[Any] = []  # the filter hiding it, while a resumed epoch runs


class BackupError(OocError, ValueError):
    """A backup directory's state is damaged, or of batches in another order."""


def _file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            crc = crc32c.crc32c(block, crc)
    return crc


def _steps(model: Any) -> int:
    """The optimizer's step count."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _quiet_ran_out() -> None:
    before = len(warnings.filters)
    warnings.filterwarnings("ignore", _RAN_OUT)
    if len(warnings.filters) > before:  # else an equal filter was there: the user's, kept
        _QUIETED.append(warnings.filters[0])


def _unquiet_ran_out() -> None:
    """Remove the filter of :func:`_quiet_ran_out` (and one a raised fit left)."""
    while _QUIETED:
        with contextlib.suppress(ValueError):
            warnings.filters.remove(_QUIETED.pop())
    getattr(warnings, "_filters_mutated", lambda: None)()  # forget cached decisions


class BackupAndRestore(keras.callbacks.Callback):
    """``keras.callbacks.BackupAndRestore`` that also resumes mid-epoch.

    >>> batches = ds.train.batches(512, shuffle=True, seed=1)      # doctest: +SKIP
    >>> backup = ooc.BackupAndRestore(batches, "backup", save_freq=100)
    >>> model.fit(batches, epochs=10, shuffle=False, callbacks=[backup])

    Run the same lines again after a crash or a kill: the model and
    optimizer are restored from the last backup, and ``fit`` goes on with
    the batches that were to come after it (the first epoch shown is the
    interrupted one, with fewer steps).  ``fit`` must be given
    ``shuffle=False`` (ooc's batches shuffle themselves; Keras' shuffle is
    not reproducible) and no ``steps_per_epoch``, and ``batches`` a ``seed``
    and threads, not processes (``use_multiprocessing=False``).

    One process writes ``backup_dir`` (in multi-worker training, the chief).

    Parameters
    ----------
    batches
        The :class:`~ooc.keras_dataset.KerasBatches` given to ``fit``.
    backup_dir
        Where backups are kept; made when the first one is written.
    save_freq
        ``"epoch"``, or back up every that many batches (and at epoch ends).
    delete_checkpoint
        Delete the backup's files when ``fit`` ends normally.
    """

    def __init__(self, batches: KerasBatches, backup_dir: str | os.PathLike,
                 save_freq: str | int = "epoch", delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not isinstance(batches, KerasBatches):
            raise TypeError("batches must be what split.batches(...) returns (the PyDataset "
                            f"given to fit); got {type(batches).__name__}.")
        if batches.use_multiprocessing:
            raise ValueError("BackupAndRestore needs batches read in threads "
                             "(use_multiprocessing=False): from worker processes ooc cannot "
                             "tell whether Keras reorders them.")
        if batches.reader.options.shuffle and batches.reader.options.seed is None:
            raise ValueError("BackupAndRestore needs batches made with a seed "
                             "(split.batches(..., shuffle=True, seed=1)): a resumed run must "
                             "draw the same orders.")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive integer; got "
                             f"{save_freq!r}.")
        self.batches, self.dir = batches, Path(backup_dir)
        self.save_freq, self.delete_checkpoint = save_freq, delete_checkpoint
        self._epoch = self._order = 0  # Keras' epoch in progress and the batches' order
        self._position = 0  # batches of the order trained on
        self._saved_at = 0  # the position of the last backup
        self._steps_after: int | None = None  # optimizer steps when the resumed epoch ends

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_NAME

    def _damaged(self, what: str) -> BackupError:
        return BackupError(f"{what}. Delete {self.dir} to train from the start.")

    def on_train_begin(self, logs: dict | None = None) -> None:
        _unquiet_ran_out()
        self._steps_after = None
        if self.batches.skip:
            raise ValueError("these batches were left inside a resumed epoch by a fit that "
                             "stopped there; make them again (split.batches(...)) for this "
                             "fit.")
        steps = self.params.get("steps")
        if steps is not None and steps != len(self.batches.reader):
            raise ValueError(f"BackupAndRestore needs fit to take whole epochs of the batches "
                             f"({len(self.batches.reader)} steps); leave steps_per_epoch out "
                             f"(it is {steps}).")
        state = self._read_state()
        self._remove_files(keep=None if state is None else state["weights"])
        if state is not None:
            self._restore(state)

    def _restore(self, state: dict[str, Any]) -> None:
        weights = self.dir / state["weights"]
        if not weights.is_file() or _file_crc(weights) != state["crc32c"]:
            raise self._damaged(f"{weights}: the weights of the last backup are missing or "
                                f"damaged (their CRC-32C is not the one {self.state_path} "
                                "gives)")
        try:
            self.batches.resume(state["batches"])
        except ValueError as exc:
            raise BackupError(f"{self.state_path}: {exc}") from None
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # its variables are restored too
        model.load_weights(weights)
        model._initial_epoch = state["keras_epoch"]  # as Keras' BackupAndRestore does
        if self.batches.skip:
            # the resumed epoch ends when its batches do, before the steps Keras counted
            # for a whole one; Keras then warns, wrongly, that it stops training, and its
            # TensorFlow backend counts the step that found no batch
            _quiet_ran_out()
            if model.optimizer is not None:
                self._steps_after = _steps(model) + len(self.batches)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise self._damaged(f"{self.state_path}: not a readable ooc backup state "
                                f"({exc})") from None
        if not isinstance(state, dict) or {k: state.get(k) for k in FORMAT} != FORMAT:
            raise self._damaged(f"{self.state_path}: not an ooc backup state of version "
                                f"{FORMAT['version']}")
        kinds = {"weights": str, "crc32c": int, "keras_epoch": int, "batches": dict}
        if not all(isinstance(state.get(k), t) for k, t in kinds.items()) or \
                not _OURS.fullmatch(state["weights"]):
            raise self._damaged(f"{self.state_path}: an ooc backup state with fields missing "
                                "or of the wrong kind")
        return state

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._order = epoch, self.batches.epoch
        self._position = self._saved_at = self.batches.skip

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.batches.reordered:
            raise ValueError("model.fit reorders the batches (its shuffle=True default): "
                             "ooc.BackupAndRestore cannot tell which were trained on. Pass "
                             "shuffle=False to fit; ooc's batches are shuffled already.")
        # batch: the last step of this call (several with steps_per_execution)
        self._position = self.batches.skip + batch + 1
        # the epoch's last batch is backed up at its end (after validation)
        if self.save_freq != "epoch" and self._position < len(self.batches.reader) and \
                self._position - self._saved_at >= self.save_freq:
            self._saved_at = self._position
            self._save(self._epoch, self._order, self._position)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        _unquiet_ran_out()
        whole = self.batches.epoch != self._order  # the batches moved on to the next order
        if whole and self._steps_after is not None and _steps(self.model) != self._steps_after:
            self.model.optimizer.iterations.assign(self._steps_after)  # schedules, Adam
        self._steps_after = None
        if whole or self._position >= len(self.batches.reader):
            self._save(epoch + 1, self._order + 1, 0)
        else:  # stopped inside the epoch (stop_training)
            self._save(epoch, self._order, self._position)

    def on_train_end(self, logs: dict | None = None) -> None:
        _unquiet_ran_out()
        self.model._initial_epoch = None  # a later fit of this model starts where it is told
        self.batches.skip = 0  # stopped inside the resumed epoch: the next fit takes whole ones
        if self.delete_checkpoint:
            self.state_path.unlink(missing_ok=True)
            self._remove_files(keep=None)
            with contextlib.suppress(OSError):
                self.dir.rmdir()  # only if nothing else is there

    def _save(self, keras_epoch: int, order_epoch: int, position: int) -> None:
        """Write the weights, then commit them with the state (see the module docstring)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        name = f"ooc-backup-{keras_epoch}-{position}-{token}.weights.h5"
        tmp = self.dir / f"{STATE_NAME}.tmp-{token}"
        try:
            self.model.save_weights(self.dir / name)
            fsync_path(self.dir / name)
            state = {**FORMAT, "weights": name, "crc32c": _file_crc(self.dir / name),
                     "keras_epoch": keras_epoch,
                     "batches": self.batches.reader.state(order_epoch, position)}
            tmp.write_text(json.dumps(state))
            fsync_path(tmp)
            fsync_path(self.dir)  # the weights' name before the state that gives it
            os.replace(tmp, self.state_path)
            fsync_path(self.dir)
        finally:
            tmp.unlink(missing_ok=True)
        self._remove_files(keep=name)

    def _remove_files(self, keep: str | None) -> None:
        """Delete this callback's files other than the state and the weights ``keep``."""
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                if _OURS.fullmatch(path.name) and path.name != keep:
                    path.unlink(missing_ok=True)
