"""What a run needs to continue after its last completed epoch, and its checkpoint file.

:class:`TrainState` holds the early-stopping state and the history
(:func:`record_epoch` updates it after an epoch). After every epoch
:func:`save_checkpoint` writes model, optimizer, RNG states (Python, NumPy, torch, CUDA)
and the state atomically to ``<out>/.checkpoint.pt`` (:data:`CHECKPOINT_NAME`);
:func:`load_checkpoint` restores them, so that a resumed run ends bit-identical to an
uninterrupted one on CPU. Everything is stored as tensors and plain values, loadable with
``torch.load(weights_only=True)``. A checkpoint that cannot be read, or that belongs to
other parameters, is ignored (the run starts from scratch).
"""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from scalecnn import atomic

if TYPE_CHECKING:
    from scalecnn.training import RunConfig

log = logging.getLogger(__name__)

CHECKPOINT_NAME = ".checkpoint.pt"
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "train_time", "val_loss", "val_acc")


def _numpy_state_to_safe(state: tuple) -> tuple:
    """NumPy's legacy RNG state with its key array as a tensor (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached)


def _numpy_state_from_safe(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": _numpy_state_to_safe(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state_from_safe(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainState:
    """Everything needed to continue a run after its last completed epoch."""

    epoch: int = 0
    best_val_acc: float = -1.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    status: str = "ok"
    message: str = ""
    resumes: int = 0
    """How many times the run was resumed from its checkpoint (reported in metrics.json)."""


def record_epoch(state: TrainState, model: nn.Module, row: tuple[float, ...]) -> None:
    """Early-stopping bookkeeping after an epoch: keep a copy of the model's state when
    its validation accuracy is strictly better than the best so far, count the epochs
    without improvement and append ``row`` (the :data:`HISTORY_COLUMNS` values) to the
    history."""
    epoch, val_acc = int(row[0]), row[HISTORY_COLUMNS.index("val_acc")]
    if val_acc > state.best_val_acc:
        state.best_val_acc, state.best_epoch = val_acc, epoch
        state.best_state = copy.deepcopy(model.state_dict())
        state.epochs_without_improvement = 0
    else:
        state.epochs_without_improvement += 1
    state.epoch = epoch
    state.history.append(dict(zip(HISTORY_COLUMNS, row, strict=True)))


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    cfg: RunConfig,
) -> None:
    """Write the checkpoint of the run after ``state.epoch`` atomically to ``path``.

    On a full disk this raises :class:`scalecnn.atomic.DiskFullError` naming ``path``;
    the previous checkpoint stays as it was (no temporary file is left behind)."""
    atomic.save_torch(
        path,
        {
            "config": asdict(cfg),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "train_state": asdict(state),
            "rng": _rng_state(),
        },
    )


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: RunConfig,
) -> TrainState | None:
    """Restore model, optimizer and RNG states from ``path`` and return the run's state;
    ``None`` (start from scratch) when there is no checkpoint, it cannot be read, or it
    was written for other parameters (``device`` and ``threads`` aside)."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt checkpoint is discarded, the run restarts cleanly
        log.warning("ignoring unreadable checkpoint %s (%s); starting from scratch", path, exc)
        return None
    saved = dict(ckpt["config"])
    current = asdict(cfg)
    for volatile in ("device", "threads"):
        saved.pop(volatile, None)
        current.pop(volatile, None)
    if saved != current:
        log.warning("checkpoint %s belongs to other parameters; starting from scratch", path)
        return None
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    _set_rng_state(ckpt["rng"])
    return TrainState(**ckpt["train_state"])
