"""One training run of the study's protocol, resumable after a kill.

Protocol (``docs/protocol.md``): seed Python, NumPy and torch with the
run's seed before building the model; Adam at the run's learning rate,
cross-entropy, batch size 16; batches follow the loader's fixed shuffled order
(the paper's quirk; ``reshuffle=True`` draws a new, seed-determined order each
epoch instead); at most ``max_epochs`` epochs; keep the state with the best
validation accuracy (strictly better replaces it) and stop after ``patience``
epochs without improvement; reload the best state and report test loss,
accuracy and predictions.

After every epoch a checkpoint (model, optimizer, RNG states, early-stopping
state, history; :mod:`scalecnn.checkpoint`) is written atomically to
``<out>/.checkpoint.pt``. Running the same run again continues from it and ends
bit-identical to an uninterrupted run on CPU. The checkpoint is not a declared
workflow output, so Snakemake's clean-up of an incomplete job leaves it in place;
it is removed when the run completes.

A stop signal (SIGTERM: Slurm's time limit, preemption, ``scancel``; SIGUSR1:
``sbatch --signal``) stops the run at the next training step: the partial epoch
is abandoned (the checkpoint after the last completed epoch stays as it is, so
the rerun redoes that epoch from exactly that state: exact resume), one line
``stopped by SIGTERM after epoch N, step M; rerun resumes ...`` is logged and
:class:`scalecnn.signals.Stopped` ends the process with status 128 + signal
(143 for SIGTERM). A checkpoint being written when the signal arrives is
finished first; a SIGKILL at any moment leaves the previous one intact.

A full disk (a checkpoint or an output that finds no room) ends the run with
:class:`scalecnn.atomic.DiskFullError`: one message naming the file, the previous
checkpoint intact, and where the rerun resumes.
"""

from __future__ import annotations

import itertools
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
from torch import nn

from scalecnn import atomic
from scalecnn.atomic import DiskFullError
from scalecnn.checkpoint import (
    CHECKPOINT_NAME,
    HISTORY_COLUMNS,
    TrainState,
    load_checkpoint,
    record_epoch,
    save_checkpoint,
)
from scalecnn.device import resolve_device, set_threads, tune_allocator
from scalecnn.epochs import (
    SLOW_HOOK_ENV,
    EpochAbandonedError,
    NonFiniteLossError,
    SplitTensors,
    evaluate_split,
    train_epoch,
)
from scalecnn.provenance import code_commit
from scalecnn.signals import StopRequest, stop_requests
from scalecnn.study import EVAL_BATCH_SIZE

# the names of a run's parts, importable from here (tests, benchmarks/, scripts/)
__all__ = [
    "CHECKPOINT_NAME",
    "EVAL_BATCH_SIZE",
    "HISTORY_COLUMNS",
    "KILL_HOOK_ENV",
    "SIGNAL_HOOK_ENV",
    "SLOW_HOOK_ENV",
    "RunConfig",
    "SplitTensors",
    "TrainState",
    "batch_order",
    "build_run_model",
    "evaluate_split",
    "load_splits",
    "record_epoch",
    "save_checkpoint",
    "seed_everything",
    "train_epoch",
    "train_run",
]

log = logging.getLogger(__name__)

KILL_HOOK_ENV = "SCALECNN_KILL_AFTER_EPOCH"
"""Fault-injection hook for tests: SIGKILL the process right after this epoch's checkpoint."""

SIGNAL_HOOK_ENV = "SCALECNN_SIGNAL_AT_STEP"
"""Fault-injection hook for tests: ``EPOCH:STEP`` sends this process SIGTERM after ``STEP``
training steps of epoch ``EPOCH``, as if Slurm's time limit struck there;
``EPOCH:STEP:SIGTERM,SIGKILL`` sends those signals in turn. Deterministic, unlike a signal
sent from outside after some time."""


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


def _maybe_kill(epoch: int) -> None:
    target = os.environ.get(KILL_HOOK_ENV)
    if target is not None and int(target) == epoch:
        os.kill(os.getpid(), signal.SIGKILL)


def _signal_hook(stop: StopRequest, epoch: int) -> Callable[[], bool]:
    """``stop``, or with :data:`SIGNAL_HOOK_ENV` set for ``epoch``, ``stop`` preceded by the
    hook's signals before the chosen step (:func:`signal.raise_signal` runs the handler at
    once, so the step's own check sees it)."""
    spec = os.environ.get(SIGNAL_HOOK_ENV)
    if not spec:
        return stop
    at_epoch, at_step, *names = spec.split(":")
    if int(at_epoch) != epoch:
        return stop
    signums = [signal.Signals[n] for n in (names[0] if names else "SIGTERM").split(",")]
    checks = itertools.count()  # train_epoch asks before every step

    def should_stop() -> bool:
        if next(checks) == int(at_step):
            for signum in signums:
                signal.raise_signal(signum)
        return stop()

    return should_stop


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


def _disk_full(exc: DiskFullError, ckpt_path: Path, saved_epoch: int) -> DiskFullError:
    """The full-disk error of a run, saying where its rerun resumes."""
    if saved_epoch and ckpt_path.is_file():
        resume = f"resumes from {ckpt_path} (after epoch {saved_epoch})"
    else:
        resume = "starts from scratch (no epoch was saved)"
    return exc.with_hint(f"free some space there (or choose another --out) and rerun: it {resume}")


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
    state = load_checkpoint(ckpt_path, model, optimizer, cfg)
    if state is None:
        state = TrainState()
    else:
        state.resumes += 1
        log.info(
            "resuming %s from the checkpoint after epoch %d (resume %d)",
            out,
            state.epoch,
            state.resumes,
        )

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
                should_stop=_signal_hook(stop, epoch),
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
        try:
            save_checkpoint(ckpt_path, model, optimizer, state, cfg)
        except DiskFullError as exc:  # the checkpoint after the previous epoch is intact
            raise _disk_full(exc, ckpt_path, epoch - 1) from None
        _maybe_kill(epoch)
        if stop.requested:  # arrived during validation or the checkpoint: stop here
            raise _stopped(stop, state, 0, ckpt_path)

    if stop.requested:  # before the outputs are written: the rerun writes them
        raise _stopped(stop, state, 0, ckpt_path)
    try:
        metrics = _finish(cfg, model, state, splits, device, out)
    except DiskFullError as exc:  # the checkpoint is removed only after the outputs
        raise _disk_full(exc, ckpt_path, state.epoch) from None
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
        "commit": code_commit(),
        "resumes": state.resumes,
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
