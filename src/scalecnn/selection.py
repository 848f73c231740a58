"""Learning-rate selection (``docs/protocol.md``), or the paper's chosen rates.

For one (data, model, evaluation): the median of the best validation accuracy
over the selection seeds for each learning rate; the rate with the highest
median wins, ties go to the smaller rate. With the paper's two rates this is
"choose 1e-2 only if its median is strictly higher, else 1e-3". A run without
a finite best validation accuracy (non-finite loss in its first epoch) counts
as 0 %.

Config key ``paper_lr_models`` (``all`` or a list of model names) skips the
selection for those models: their rate is the one the paper chose for the same
(data, model, evaluation) (``paper_runs_summary.csv``, column ``lr``). Every
selection record says where its rate came from: ``"source": "selection"`` or
``"paper"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalecnn import atomic

PAPER_LR_KEY = "paper_lr_models"
SOURCE_SELECTION = "selection"
SOURCE_PAPER = "paper"


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
        "source": SOURCE_SELECTION,
    }


def write_selection(metrics_files: Iterable[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Write the selection record (JSON) of one (data, model, evaluation)."""
    record = select_from_runs(metrics_files)
    atomic.write_json(out, record)
    return record


def paper_lr_models(value: str | Sequence[str] | None, models: Sequence[str]) -> list[str]:
    """The models of ``models`` whose learning rate is taken from the paper.

    Args:
        value: config key ``paper_lr_models``: ``"all"``, a list of model names, or
            ``None``/``[]`` (select every model's rate by training).
        models: the config's ``models``.

    Raises:
        ValueError: a listed model is neither registered nor in ``models``, or ``value``
            is another string.
    """
    if value is None:
        return []
    if isinstance(value, str):
        if value != "all":
            raise ValueError(
                f"config key '{PAPER_LR_KEY}': expected 'all' or a list of models, got {value!r}"
            )
        return list(models)
    from scalecnn.models import list_models

    unknown = [m for m in value if m not in list_models() and m not in models]
    if unknown:
        raise ValueError(
            f"config key '{PAPER_LR_KEY}': unknown model(s) {unknown}; registered: {list_models()}"
        )
    # registered models the study does not train (e.g. after --config models=[...]) are
    # ignored, so that one list serves every subset of the models
    return [m for m in models if m in set(value)]


def paper_lrs(
    configs: Iterable[tuple[str, str, int]], summary: pd.DataFrame | None = None
) -> dict[tuple[str, str, int], float]:
    """The paper's chosen learning rate of each (data, model, evaluation).

    Args:
        configs: (data, model, evaluation) triples.
        summary: the paper's run summary; defaults to the packaged
            ``paper_runs_summary.csv`` (:func:`scalecnn.plots.load_paper_summary`).

    Raises:
        ValueError: naming config key ``paper_lr_models`` and every configuration the
            paper has no row for (e.g. a plugin model).
    """
    if summary is None:
        from scalecnn.plots.paper import load_paper_summary

        summary = load_paper_summary()
    table = {
        (str(r.data), str(r.model), int(r.evaluation)): float(r.lr)
        for r in summary.itertuples(index=False)
    }
    out, missing = {}, []
    for data, model, evaluation in configs:
        key = (data, model, int(evaluation))
        if key in table:
            out[key] = table[key]
        else:
            missing.append(f"{data}/{model}/eval{int(evaluation)}")
    if missing:
        raise ValueError(
            f"config key '{PAPER_LR_KEY}': the paper has no learning rate for {missing}; "
            "remove these models from the key (their rate is then selected by training)"
        )
    return out


def paper_selection_record(data: str, model: str, evaluation: int, lr: float) -> dict[str, Any]:
    """Selection record of a configuration whose rate ``lr`` is the paper's (no selection runs)."""
    return {
        "data": data,
        "model": model,
        "evaluation": int(evaluation),
        "medians": {},
        "seeds_per_lr": {},
        "chosen_lr": float(lr),
        "source": SOURCE_PAPER,
    }


def write_paper_selection(
    data: str, model: str, evaluation: int, out: str | os.PathLike
) -> dict[str, Any]:
    """Write the selection record (JSON) of one configuration with the paper's rate."""
    lr = paper_lrs([(data, model, int(evaluation))])[(data, model, int(evaluation))]
    record = paper_selection_record(data, model, evaluation, lr)
    atomic.write_json(out, record)
    return record
