"""One pass of a run over a split: a training epoch, or an evaluation pass.

:func:`train_epoch` steps Adam (or any optimizer) over the batches in the loader's fixed
order or a given one; :func:`evaluate_split` predicts a split in eval mode without
gradients. :mod:`scalecnn.training` runs them epoch after epoch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SLOW_HOOK_ENV = "SCALECNN_STEP_SLEEP"
"""Test hook: sleep this many seconds after every training step (stretches a tiny run past
a one-minute Slurm time limit). Sleeping changes no number of the run."""


@dataclass
class SplitTensors:
    """Images ``(N, C, 64, 64)`` float32 and labels ``(N,)`` int64 on the run's device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


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
