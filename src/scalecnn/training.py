"""One training run of the study's protocol, resumable after a kill.

Protocol (``shared/spec/study.md``): seed Python, NumPy and torch with the
run's seed before building the model; Adam at the run's learning rate,
cross-entropy, batch size 16; batches follow the loader's fixed shuffled order
(the paper's quirk; ``reshuffle=True`` draws a new, seed-determined order each
epoch instead); at most ``max_epochs`` epochs; keep the state with the best
validation accuracy (strictly better replaces it) and stop after ``patience``
epochs without improvement; reload the best state and report test loss,
accuracy and predictions.

After every epoch a checkpoint (model, optimizer, RNG states, early-stopping
state, history) is written atomically to ``<out>/.checkpoint.pt``. Running the
same run again continues from it and ends bit-identical to an uninterrupted
run on CPU. The checkpoint is not a declared workflow output, so Snakemake's
clean-up of an incomplete job leaves it in place; it is removed when the run
completes.

A stop signal (SIGTERM: Slurm's time limit, preemption, ``scancel``; SIGUSR1:
``sbatch --signal``) stops the run at the next training step: the partial epoch
is abandoned (the checkpoint after the last completed epoch stays as it is, so
the rerun redoes that epoch from exactly that state: exact resume), one line
``stopped by SIGTERM after epoch N, step M; rerun resumes ...`` is logged and
:class:`scalecnn.signals.Stopped` ends the process with status 128 + signal
(143 for SIGTERM). A checkpoint being written when the signal arrives is
finished first; a SIGKILL at any moment leaves the previous one intact.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from scalecnn import atomic
from scalecnn.device import resolve_device, set_threads, tune_allocator
from scalecnn.signals import StopRequest, stop_requests

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 64
"""Batch size of every evaluation pass (no gradients): larger batches amortise the
SiConv2d fast path's per-batch kernel spectra (~10% faster per image than 16 on CPU)
and results do not depend on it (eval mode, no batch statistics)."""

CHECKPOINT_NAME = ".checkpoint.pt"
KILL_HOOK_ENV = "SCALECNN_KILL_AFTER_EPOCH"
"""Fault-injection hook for tests: SIGKILL the process right after this epoch's checkpoint."""
SLOW_HOOK_ENV = "SCALECNN_STEP_SLEEP"
"""Test hook: sleep this many seconds after every training step (stretches a tiny run past
a one-minute Slurm time limit). Sleeping changes no number of the run."""

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "train_time", "val_loss", "val_acc")


@dataclass
class RunConfig:
    """Parameters of one training run."""

    model: str
    data: str
    evaluation: int
    kernel_size: int = 7
    interpolation: str = "bicubic"
    lr: float = 1e-3
    seed: int = 1
    batch_size: int = 16
    max_epochs: int = 200
    patience: int = 10
    reshuffle: bool = False
    device: str = "auto"
    threads: int | None = None
    basis: str | None = None
    plugins: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        checks = {
            "lr": self.lr > 0,
            "seed": self.seed >= 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 1,
            "patience": self.patience >= 1,
            "kernel_size": self.kernel_size >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid {key}={getattr(self, key)!r}: must be positive")
        from scalecnn.data.scenarios import get_scenario

        get_scenario(self.evaluation)

    def params(self, device: torch.device) -> dict[str, Any]:
        """The run's parameters as recorded in ``metrics.json``."""
        p = asdict(self)
        p.update(device=str(device), data_name=Path(self.data).stem)
        p.pop("threads")
        return p


@dataclass
class SplitTensors:
    """Images ``(N, C, 64, 64)`` float32 and labels ``(N,)`` int64 on the run's device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def seed_everything(seed: int) -> None:
    """Seed Python ``random``, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_splits(
    data: str | os.PathLike, evaluation: int, device: torch.device
) -> tuple[dict[str, SplitTensors], int, int]:
    """Train/valid/test tensors of a scenario, plus ``(num_channels, num_classes)``.

    Train and valid use the scenario's training sizes, test its test sizes;
    all are loaded with ``shuffle=True`` as in the paper.
    """
    from scalecnn.data import STIRDataset, get_scenario

    dataset = STIRDataset(data)
    scenario = get_scenario(evaluation)
    sizes = {
        "train": scenario.train_sizes,
        "valid": scenario.train_sizes,
        "test": scenario.test_sizes,
    }
    splits = {}
    for split, scales in sizes.items():
        images, labels = dataset.to_numpy(split, list(scales), shuffle=True)
        splits[split] = SplitTensors(
            torch.from_numpy(np.ascontiguousarray(images)).to(device),
            torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device),
        )
    return splits, dataset.num_channels, dataset.num_classes


def build_run_model(cfg: RunConfig, num_channels: int, num_classes: int) -> nn.Module:
    """Build the run's model from the registry (with its basis when it needs one)."""
    from scalecnn.models import build_model, get_spec, load_plugins

    load_plugins(cfg.plugins)
    extra: dict[str, Any] = {}
    if get_spec(cfg.model).needs_basis:
        if cfg.basis is None:
            raise ValueError(f"model {cfg.model!r} needs a basis file; pass --basis PATH")
        extra["basis"] = cfg.basis
    return build_model(
        cfg.model,
        kernel_size=cfg.kernel_size,
        interpolation=cfg.interpolation,
        num_channels=num_channels,
        num_classes=num_classes,
        **extra,
    )


def batch_order(n: int, epoch: int, cfg: RunConfig) -> torch.Tensor | None:
    """Sample order of an epoch: ``None`` (fixed loader order) or a seeded permutation."""
    if not cfg.reshuffle:
        return None
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class EpochAbandonedError(Exception):
    """``should_stop`` asked :func:`train_epoch` to stop after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"epoch abandoned after {steps} steps")
        self.steps = steps


def _step_sleep() -> float:
    return float(os.environ.get(SLOW_HOOK_ENV) or 0.0)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SplitTensors,
    batch_size: int,
    order: torch.Tensor | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[float, float]:
    """One pass over ``data`` in batches; returns (mean loss, accuracy in percent).

    Raises :class:`NonFiniteLossError` when the epoch's loss is not finite (checked once
    per epoch, so that a GPU is never synchronised per batch), and
    :class:`EpochAbandonedError` when ``should_stop()`` is true before a step (the model and
    optimizer are then part-way through the epoch: the caller discards them).
    """
    sleep = _step_sleep()
    model.train()
    n = len(data)
    total_loss = torch.zeros((), dtype=torch.float64, device=data.labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.labels.device)
    if order is not None:
        order = order.to(data.labels.device)  # one copy per epoch, not per batch
    for step, start in enumerate(range(0, n, batch_size)):
        if should_stop is not None and should_stop():
            raise EpochAbandonedError(step)
        if order is None:
            x = data.images[start : start + batch_size]
            y = data.labels[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            x, y = data.images[idx], data.labels[idx]
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach().double() * y.shape[0]
        correct += (logits.detach().argmax(dim=1) == y).sum()
        if sleep:
            time.sleep(sleep)
    mean_loss = total_loss.item() / n
    if not np.isfinite(mean_loss):
        raise NonFiniteLossError(f"non-finite training loss ({mean_loss})")
    return mean_loss, 100.0 * correct.item() / n


@torch.no_grad()
def evaluate_split(
    model: nn.Module, data: SplitTensors, batch_size: int
) -> tuple[float, float, np.ndarray]:
    """Eval-mode pass without gradients: (mean loss, accuracy in percent, predictions ``(N,)``)."""
    model.eval()
    n = len(data)
    total_loss = torch.zeros((), dtype=torch.float64, device=data.labels.device)
    preds = []
    for start in range(0, n, batch_size):
        x = data.images[start : start + batch_size]
        y = data.labels[start : start + batch_size]
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").double()  # no per-batch sync
        preds.append(logits.argmax(dim=1))
    pred = torch.cat(preds)
    acc = 100.0 * (pred == data.labels).sum().item() / n
    return total_loss.item() / n, acc, pred.cpu().numpy().astype(np.int64)


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


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    cfg: RunConfig,
) -> None:
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


def _load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: RunConfig,
    device: torch.device,
) -> TrainState | None:
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


def _maybe_kill(epoch: int) -> None:
    target = os.environ.get(KILL_HOOK_ENV)
    if target is not None and int(target) == epoch:
        os.kill(os.getpid(), signal.SIGKILL)


def train_run(cfg: RunConfig, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Train one run and write its outputs into ``out_dir``.

    Writes ``metrics.json``, ``history.csv``, ``model.pt`` (best state_dict) and
    ``predictions.npy`` (test predictions in loader order), each atomically.
    Returns the metrics dictionary. Raises :class:`scalecnn.signals.Stopped` after a
    stop signal (SIGTERM, SIGUSR1), leaving the checkpoint of the last completed epoch.
    """
    with stop_requests() as stop:
        return _train_run(cfg, out_dir, stop)


def _stopped(stop: StopRequest, state: TrainState, steps: int, ckpt_path: Path) -> Exception:
    """The one log line and the exception that end a run after a stop signal."""
    if state.epoch == 0:
        where = "from scratch (no epoch completed)"
    else:
        where = f"from {ckpt_path} (after epoch {state.epoch})"
    redo = f"; its {steps} step(s) of epoch {state.epoch + 1} are redone" if steps else ""
    return stop.stop(
        f"stopped by {stop.name} after epoch {state.epoch}, step {steps}; rerun resumes "
        f"{where}{redo}"
    )


def _train_run(cfg: RunConfig, out_dir: str | os.PathLike, stop: StopRequest) -> dict[str, Any]:
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    tune_allocator()

    splits, num_channels, num_classes = load_splits(cfg.data, cfg.evaluation, device)
    seed_everything(cfg.seed)
    model = build_run_model(cfg, num_channels, num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    ckpt_path = out / CHECKPOINT_NAME
    state = _load_checkpoint(ckpt_path, model, optimizer, cfg, device)
    if state is None:
        state = TrainState()
    else:
        log.info("resuming %s from the checkpoint after epoch %d", out, state.epoch)

    log.info(
        "run %s on %s | %s train / %s valid / %s test images | %d parameters",
        out,
        device,
        len(splits["train"]),
        len(splits["valid"]),
        len(splits["test"]),
        sum(p.numel() for p in model.parameters()),
    )
    while (
        state.status == "ok"
        and state.epoch < cfg.max_epochs
        and state.epochs_without_improvement < cfg.patience
    ):
        epoch = state.epoch + 1
        start = time.perf_counter()
        try:
            train_loss, train_acc = train_epoch(
                model,
                optimizer,
                splits["train"],
                cfg.batch_size,
                batch_order(len(splits["train"]), epoch, cfg),
                should_stop=stop,
            )
        except EpochAbandonedError as exc:  # the checkpoint holds the state after state.epoch
            raise _stopped(stop, state, exc.steps, ckpt_path) from None
        except NonFiniteLossError as exc:
            state.status, state.message = "nonfinite", f"epoch {epoch}: {exc}"
            log.error("stopping run: %s", state.message)
            break
        train_time = time.perf_counter() - start
        val_loss, val_acc, _ = evaluate_split(model, splits["valid"], EVAL_BATCH_SIZE)
        record_epoch(state, model, (epoch, train_loss, train_acc, train_time, val_loss, val_acc))
        log.info(
            "epoch %3d/%d  train loss %.4f acc %6.2f%%  val loss %.4f acc %6.2f%%  "
            "(best %.2f%% @ %d)  %.1fs",
            epoch,
            cfg.max_epochs,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            state.best_val_acc,
            state.best_epoch,
            train_time,
        )
        _save_checkpoint(ckpt_path, model, optimizer, state, cfg)
        _maybe_kill(epoch)
        if stop.requested:  # arrived during validation or the checkpoint: stop here
            raise _stopped(stop, state, 0, ckpt_path)

    if stop.requested:  # before the outputs are written: the rerun writes them
        raise _stopped(stop, state, 0, ckpt_path)
    metrics = _finish(cfg, model, state, splits, device, out)
    ckpt_path.unlink(missing_ok=True)
    return metrics


def _finish(
    cfg: RunConfig,
    model: nn.Module,
    state: TrainState,
    splits: dict[str, SplitTensors],
    device: torch.device,
    out: Path,
) -> dict[str, Any]:
    """Reload the best state, test it and write the run's outputs."""
    test_loss = test_acc = None
    predictions = np.full(len(splits["test"]), -1, dtype=np.int64)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
        test_loss, test_acc, predictions = evaluate_split(model, splits["test"], EVAL_BATCH_SIZE)
    history = pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))
    times = history["train_time"].tolist()
    metrics = {
        "params": cfg.params(device),
        "status": state.status,
        "message": state.message,
        "best_val_acc": state.best_val_acc if state.best_state is not None else None,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "train_time_last_epoch": times[-1] if times else None,
        "train_time_mean": float(np.mean(times)) if times else None,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "history": {col: history[col].tolist() for col in HISTORY_COLUMNS},
    }
    atomic.save_torch(out / "model.pt", state.best_state or model.state_dict())
    atomic.write_npy(out / "predictions.npy", predictions)
    atomic.write_csv(out / "history.csv", history)
    atomic.write_json(out / "metrics.json", metrics)
    log.info(
        "finished %s: status %s, best val %.2f%%, test %s%%",
        out,
        state.status,
        metrics["best_val_acc"] or float("nan"),
        test_acc,
    )
    return metrics
