"""``scalecnn train`` in a subprocess, for the tests that stop or kill a run part-way
(tests/test_training.py, tests/test_atomic.py): the standard CNN, evaluation 2 (16 training
sizes: 6 steps an epoch on the tiny STIR file), on the CPU, and the environments that make
such a run SIGKILL itself after an epoch or signal itself at a given step."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scalecnn.training import KILL_HOOK_ENV, SIGNAL_HOOK_ENV


def train_command(data: Path, out: Path, *options: str) -> list[str]:
    """The command line that trains the standard CNN on the STIR file ``data`` (evaluation
    2) on the CPU into ``out``, with further ``options`` such as ``--max-epochs``."""
    return [
        sys.executable,
        "-m",
        "scalecnn.cli",
        "train",
        "--model",
        "standard",
        "--data",
        str(data),
        "--evaluation",
        "2",
        *options,
        "--device",
        "cpu",
        "--out",
        str(out),
    ]


def kill_after_epoch_env(epoch: int) -> dict[str, str]:
    """This process's environment plus the hook that kills a training run with SIGKILL
    right after the checkpoint of ``epoch`` is written."""
    return dict(os.environ, **{KILL_HOOK_ENV: str(epoch)})


def signal_at_step_env(epoch: int, step: int, *signals: str) -> dict[str, str]:
    """This process's environment plus the hook that makes a training run send itself
    ``signals`` (default SIGTERM) after ``step`` training steps of ``epoch``."""
    spec = f"{epoch}:{step}" + (":" + ",".join(signals) if signals else "")
    return dict(os.environ, **{SIGNAL_HOOK_ENV: spec})
