"""Collect per-run outputs into the study's tables (see ``docs/formats.md``).

Pure numpy and pandas: building the tables needs no torch (``tests/test_torch_free.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from scalecnn.study import PAIR_SUBSETS

RUN_PARAM_COLUMNS = ("data", "model", "evaluation", "lr", "seed", "kernel_size", "interpolation")
RUN_METRIC_COLUMNS = (
    "status",
    "best_val_acc",
    "test_acc",
    "test_loss",
    "epochs",
    "best_epoch",
    "train_time_last_epoch",
    "train_time_mean",
    "commit",
    "resumes",
)
MLFLOW_PARAMS = ("model", "data", "evaluation", "kernel_size", "interpolation", "lr", "seed")
MLFLOW_METRICS = ("best_val_acc", "test_acc", "test_loss", "train_time_last_epoch", "epochs")


def _read_metrics(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def run_row(metrics: dict) -> dict:
    """One row of ``runs.csv`` from a run's ``metrics.json`` contents."""
    p = metrics["params"]
    row = {
        "data": p["data_name"],
        "model": p["model"],
        "evaluation": p["evaluation"],
        "lr": p["lr"],
        "seed": p["seed"],
        "kernel_size": p["kernel_size"],
        "interpolation": p["interpolation"],
    }
    row.update({k: metrics.get(k) for k in RUN_METRIC_COLUMNS})
    return row


def runs_table(metrics_files: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """``runs.csv``: one row per run, sorted by data, model, evaluation, lr, seed."""
    return runs_frame([run_row(_read_metrics(f)) for f in metrics_files])


def runs_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows of parameters and metrics (their MLflow export names added here) as the
    ``runs.csv`` table, sorted by data, model, evaluation, lr, seed."""
    rows = [
        row
        | {f"params.{k}": row[k] for k in MLFLOW_PARAMS}
        | {f"metrics.{k}": row[k] for k in MLFLOW_METRICS}
        for row in rows
    ]
    columns = (
        list(RUN_PARAM_COLUMNS)
        + list(RUN_METRIC_COLUMNS)
        + [f"params.{k}" for k in MLFLOW_PARAMS]
        + [f"metrics.{k}" for k in MLFLOW_METRICS]
    )
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(list(RUN_PARAM_COLUMNS[:5]), kind="stable").reset_index(drop=True)


def best_run(metrics_files: Iterable[str | os.PathLike]) -> Path:
    """Directory of the run with the highest test accuracy (status ok; ties → first given)."""
    best, best_acc, n = None, -1.0, 0
    for f in metrics_files:
        m = _read_metrics(f)
        acc = m.get("test_acc")
        n += 1
        if m.get("status", "ok") == "ok" and acc is not None and acc > best_acc:
            best, best_acc = Path(f).parent, acc
    if best is None:
        raise ValueError(f"no completed run with a test accuracy among {n} candidates")
    return best


def summarize_equivariance(errors: np.ndarray, evaluation: int) -> float:
    """Mean error over the pairs the paper's figures use for ``evaluation``
    (:data:`scalecnn.study.PAIR_SUBSETS`), leaving out the undefined ones (NaN: an
    all-zero reference map); NaN if all are undefined."""
    chosen = errors[..., list(PAIR_SUBSETS[int(evaluation)])]
    if np.isnan(chosen).all():
        return float("nan")
    return float(np.nanmean(chosen))


def concat_csvs(files: Iterable[str | os.PathLike], sort_by: Iterable[str]) -> pd.DataFrame:
    """Concatenate one-row CSVs (e.g. per-run generalisation rows)."""
    frames = [pd.read_csv(f) for f in files]
    if not frames:
        raise ValueError("no input tables to concatenate")
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(list(sort_by), kind="stable").reset_index(drop=True)


def equivariance_table(
    pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]],
) -> pd.DataFrame:
    """``equivariance.csv`` from (metrics.json, equivariance.npz) pairs of runs.

    ``stage1_error``/``stage2_error`` are the means over the pairs that the paper
    uses for the run's evaluation (:func:`summarize_equivariance`).
    """
    rows = []
    for metrics_file, npz_file in pairs:
        m = _read_metrics(metrics_file)
        p = m["params"]
        with np.load(npz_file, allow_pickle=False) as z:
            stage1, stage2 = z["stage1"], z["stage2"]
        rows.append(
            {
                "data": p["data_name"],
                "model": p["model"],
                "eval": p["evaluation"],
                "lr": p["lr"],
                "seed": p["seed"],
                "status": m.get("status", "ok"),
                "test_acc": m.get("test_acc"),
                "stage1_error": summarize_equivariance(stage1, p["evaluation"]),
                "stage2_error": summarize_equivariance(stage2, p["evaluation"]),
                "pairs_used": " ".join(str(i) for i in PAIR_SUBSETS[int(p["evaluation"])]),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["data", "model", "eval", "lr", "seed"]).reset_index(drop=True)


def selection_table(record_files: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """``selection.csv``: one row per (data, model, evaluation) with the medians, the choice
    and ``lr_source`` (``selection``, or ``paper`` for a rate taken from the paper)."""
    rows = []
    for f in record_files:
        r = json.loads(Path(f).read_text())
        row = {"data": r["data"], "model": r["model"], "evaluation": r["evaluation"]}
        row.update({f"median_val_acc_{lr}": med for lr, med in r["medians"].items()})
        row.update({f"seeds_{lr}": n for lr, n in r["seeds_per_lr"].items()})
        row["chosen_lr"] = r["chosen_lr"]
        row["lr_source"] = r.get("source", "selection")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["data", "model", "evaluation"]).reset_index(drop=True)


def write_table(kind: str, inputs: list, out: str | os.PathLike) -> pd.DataFrame:
    """Build the table ``kind`` (runs, generalization, equivariance, selection) and write it.

    ``inputs``: metrics.json files (runs), per-run generalization.csv files,
    (metrics.json, equivariance.npz) pairs, or selection records (``.json``;
    other files are ignored so that rules can depend on per-dataset CSVs).
    """
    from scalecnn import atomic

    if kind == "runs":
        frame = runs_table(inputs)
    elif kind == "generalization":
        frame = concat_csvs(inputs, ["model", "eval", "lr", "seed"])
    elif kind == "equivariance":
        frame = equivariance_table(inputs)
    elif kind == "selection":
        frame = selection_table([f for f in inputs if str(f).endswith(".json")])
    else:
        raise ValueError(
            f"unknown table kind {kind!r}; expected runs, generalization, equivariance or selection"
        )
    atomic.write_csv(out, frame)
    return frame
