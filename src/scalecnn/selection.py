"""Learning-rate selection (``shared/spec/study.md``).

For one (data, model, evaluation): the median of the best validation accuracy
over the selection seeds for each learning rate; the rate with the highest
median wins, ties go to the smaller rate. With the paper's two rates this is
"choose 1e-2 only if its median is strictly higher, else 1e-3". A run without
a finite best validation accuracy (non-finite loss in its first epoch) counts
as 0 %.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scalecnn import io


def choose_lr(val_accs: Mapping[float, Iterable[float | None]]) -> tuple[float, dict[float, float]]:
    """Pick the learning rate from best validation accuracies per rate.

    Args:
        val_accs: learning rate → best validation accuracies (percent) of its seeds.

    Returns:
        ``(chosen_lr, {lr: median})``.
    """
    if not val_accs:
        raise ValueError("no learning rates to choose from")
    medians = {}
    for lr, accs in val_accs.items():
        values = [0.0 if a is None or not np.isfinite(a) else float(a) for a in accs]
        if not values:
            raise ValueError(f"no selection runs for learning rate {lr}")
        medians[float(lr)] = float(np.median(values))
    chosen = max(medians, key=lambda lr: (medians[lr], -lr))
    return chosen, medians


def select_from_runs(metrics_files: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """Selection record for one (data, model, evaluation) from its runs' ``metrics.json``."""
    by_lr: dict[float, list[float | None]] = {}
    keys = set()
    for path in metrics_files:
        m = json.loads(Path(path).read_text())
        p = m["params"]
        keys.add((p["data_name"], p["model"], p["evaluation"]))
        by_lr.setdefault(float(p["lr"]), []).append(m["best_val_acc"])
    if len(keys) != 1:
        raise ValueError(f"selection runs mix configurations: {sorted(keys)}")
    ((data, model, evaluation),) = keys
    chosen, medians = choose_lr(by_lr)
    return {
        "data": data,
        "model": model,
        "evaluation": evaluation,
        "medians": {str(lr): med for lr, med in medians.items()},
        "seeds_per_lr": {str(lr): len(v) for lr, v in by_lr.items()},
        "chosen_lr": chosen,
    }


def write_selection(metrics_files: Iterable[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Write the selection record (JSON) of one (data, model, evaluation)."""
    record = select_from_runs(metrics_files)
    io.write_json(out, record)
    return record


def read_chosen_lr(path: str | os.PathLike) -> float:
    """The chosen learning rate stored in a selection record."""
    return float(json.loads(Path(path).read_text())["chosen_lr"])
