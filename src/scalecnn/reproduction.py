"""Is our result the paper's? A verdict per model for one (data, evaluation).

From the reported runs (the chosen learning rate's seeds; ``runs.csv`` or the
runs' ``metrics.json``) and the paper's published summary
(``paper_runs_summary.csv``):

* :func:`reproduction_runs` — one row per run: ``model, seed, lr, test_acc,
  best_epoch, epochs, train_seconds, status, commit, resumes``.
* :func:`verdict_table` — per model: our mean and sample standard deviation of
  the test accuracy over the ok seeds, the paper's mean, standard deviation and
  run count, ``diff = ours - paper`` and the p-value of a two-sided Welch t-test
  computed from these summary statistics. The verdict is ``consistent`` when
  ``p >= alpha`` (0.01), ``differs`` when ``p < alpha``, ``insufficient`` when
  the test cannot be computed (fewer than two ok seeds: our standard deviation
  is undefined) and ``not in the paper`` for a model the paper lacks.
* :func:`rank_correlation` — Spearman's rank correlation between our means and
  the paper's over the models that have both.

The models the paper lacks are compared with the paper's models in
:mod:`scalecnn.newer_models`.

Accuracies are in percent, like the paper's table. Only runs with status
``ok`` and a finite test accuracy enter the statistics; the others stay in the
per-run table with their status.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from scalecnn.aggregate import runs_table
from scalecnn.atomic import write_csv
from scalecnn.plots import style
from scalecnn.plots.paper import load_paper_summary

ALPHA = 0.01
"""Significance level of the Welch test: ``p < ALPHA`` gives the verdict ``differs``."""

CONSISTENT = "consistent"
DIFFERS = "differs"
INSUFFICIENT = "insufficient"
NO_PAPER_VALUE = "not in the paper"

VERDICT_COLUMNS = [
    "model",
    "seeds",
    "ours_mean",
    "ours_std",
    "paper_mean",
    "paper_std",
    "paper_runs",
    "diff",
    "p_value",
    "verdict",
]
RUN_COLUMNS = [
    "model",
    "seed",
    "lr",
    "test_acc",
    "best_epoch",
    "epochs",
    "train_seconds",
    "status",
    "commit",
    "resumes",
]


def reproduction_runs(
    runs: pd.DataFrame, data: str | None = None, evaluation: int | None = None
) -> pd.DataFrame:
    """The per-run table of one (data, evaluation) from a ``runs.csv``-like frame.

    Args:
        runs: ``runs.csv`` (or :func:`scalecnn.aggregate.runs_table` of metrics.json files):
            columns ``data, model, evaluation, lr, seed, status, test_acc, epochs,
            best_epoch, train_time_mean``.
        data, evaluation: keep only these rows (``None``: the frame must hold one value).

    Returns:
        Columns :data:`RUN_COLUMNS`, models in the paper's order then by seed;
        ``train_seconds`` is the summed training time of the epochs
        (``train_time_mean * epochs``; validation and test not included);
        ``commit`` the code the run used (:data:`NOT_RECORDED` for runs older than
        that key of ``metrics.json``); ``resumes`` how often the training resumed from
        its checkpoint (``<NA>`` for runs older than that key).

    Raises:
        ValueError: nothing left, several (data, evaluation) left, or a model with
            runs at several learning rates (not one reported rate).
    """
    frame = runs.copy()
    if data is not None:
        frame = frame[frame["data"].astype(str) == str(data)]
    if evaluation is not None:
        frame = frame[frame["evaluation"].astype(int) == int(evaluation)]
    if frame.empty:
        raise ValueError(f"reproduction: no runs for data={data!r}, evaluation={evaluation!r}")
    keys = frame[["data", "evaluation"]].drop_duplicates()
    if len(keys) > 1:
        raise ValueError(
            "reproduction: runs of several (data, evaluation): "
            f"{sorted(map(tuple, keys.to_numpy().tolist()))}; pass data= and evaluation="
        )
    n_lr = frame.groupby("model")["lr"].nunique()
    if (n_lr > 1).any():
        raise ValueError(
            f"reproduction: model(s) {sorted(n_lr[n_lr > 1].index)} have runs at several "
            "learning rates; give only the reported (chosen) rate's runs"
        )
    epochs = pd.to_numeric(frame["epochs"], errors="coerce")
    out = pd.DataFrame(
        {
            "model": frame["model"].astype(str),
            "seed": frame["seed"].astype(int),
            "lr": frame["lr"].astype(float),
            "test_acc": pd.to_numeric(frame["test_acc"], errors="coerce"),
            "best_epoch": frame["best_epoch"],
            "epochs": frame["epochs"],
            "train_seconds": pd.to_numeric(frame["train_time_mean"], errors="coerce") * epochs,
            "status": frame["status"].fillna("ok").astype(str),
            "commit": run_commits(frame),
            "resumes": run_resumes(frame),
        }
    )
    rank = {m: i for i, m in enumerate(style.model_order(out["model"]))}
    out = out.assign(_r=out["model"].map(rank)).sort_values(["_r", "seed"], kind="stable")
    return out.drop(columns="_r").reset_index(drop=True)[RUN_COLUMNS]


NOT_RECORDED = "not recorded"
"""``commit`` of a run whose ``metrics.json`` predates the key."""


def run_commits(frame: pd.DataFrame) -> pd.Series:
    """The code commit of each run (``commit`` column), :data:`NOT_RECORDED` where absent."""
    if "commit" not in frame:
        return pd.Series(NOT_RECORDED, index=frame.index)
    return frame["commit"].fillna(NOT_RECORDED).astype(str)


def run_resumes(frame: pd.DataFrame) -> pd.Series:
    """How often each run resumed from its checkpoint (``resumes`` column, nullable
    integers): ``<NA>`` where absent, since runs older than the key cannot tell."""
    if "resumes" not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="Int64")
    return pd.to_numeric(frame["resumes"], errors="coerce").astype("Int64")


def _ok(runs: pd.DataFrame) -> pd.Series:
    return (runs["status"] == "ok") & np.isfinite(runs["test_acc"].astype(float))


def welch_p_value(mean1: float, std1: float, n1: int, mean2: float, std2: float, n2: int) -> float:
    """Two-sided p-value of Welch's t-test from summary statistics (sample standard
    deviations); NaN when it cannot be computed (fewer than two observations on a side,
    a missing value, or both standard deviations zero)."""
    values = np.array([mean1, std1, mean2, std2], dtype=float)
    if n1 < 2 or n2 < 2 or not np.isfinite(values).all() or std1 == std2 == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind_from_stats(
            mean1, std1, int(n1), mean2, std2, int(n2), equal_var=False
        )
    return float(result.pvalue)


def verdict_of(p_value: float, has_paper: bool = True, alpha: float = ALPHA) -> str:
    """``consistent`` (p >= alpha), ``differs`` (p < alpha), ``insufficient`` (p is NaN)
    or ``not in the paper``."""
    if not has_paper:
        return NO_PAPER_VALUE
    if not np.isfinite(p_value):
        return INSUFFICIENT
    return DIFFERS if p_value < alpha else CONSISTENT


def verdict_table(
    runs: pd.DataFrame,
    data: str,
    evaluation: int,
    paper_summary: pd.DataFrame | None = None,
    *,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Per model of ``runs`` (one (data, evaluation)): columns :data:`VERDICT_COLUMNS`.

    Args:
        runs: ``runs.csv``-like frame (see :func:`reproduction_runs`) or the output of
            :func:`reproduction_runs` itself.
        data, evaluation: the configuration compared.
        paper_summary: ``paper_runs_summary.csv``; defaults to the packaged one.
        alpha: significance level of the Welch test.
    """
    # a per-run table (from reproduction_runs, or its CSV of an older version) or runs.csv
    is_per_run = "train_seconds" in runs.columns and "data" not in runs.columns
    per_run = runs if is_per_run else reproduction_runs(runs, data, evaluation)
    paper = load_paper_summary() if paper_summary is None else paper_summary
    paper = paper[(paper["data"] == data) & (paper["evaluation"].astype(int) == int(evaluation))]
    paper = paper.set_index("model")
    rows = []
    for model in style.model_order(per_run["model"]):
        runs_m = per_run[per_run["model"] == model]
        acc = runs_m.loc[_ok(runs_m), "test_acc"].astype(float).to_numpy()
        n = len(acc)
        mean = float(acc.mean()) if n else float("nan")
        std = float(acc.std(ddof=1)) if n > 1 else float("nan")
        has_paper = model in paper.index
        p_mean = float(paper.at[model, "test_acc_mean"]) if has_paper else float("nan")
        p_std = float(paper.at[model, "test_acc_std"]) if has_paper else float("nan")
        p_runs = int(paper.at[model, "runs"]) if has_paper else 0
        p_value = welch_p_value(mean, std, n, p_mean, p_std, p_runs)
        rows.append(
            {
                "model": model,
                "seeds": n,
                "ours_mean": mean,
                "ours_std": std,
                "paper_mean": p_mean,
                "paper_std": p_std,
                "paper_runs": p_runs if has_paper else pd.NA,
                "diff": mean - p_mean,
                "p_value": p_value,
                "verdict": verdict_of(p_value, has_paper, alpha),
            }
        )
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    table["paper_runs"] = table["paper_runs"].astype("Int64")
    return table


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rank correlation of our means and the paper's over ``n`` models."""

    rho: float
    p_value: float
    n: int


def rank_correlation(table: pd.DataFrame) -> RankCorrelation:
    """Spearman's rho between ``ours_mean`` and ``paper_mean`` of a :func:`verdict_table`,
    over the models with both finite; NaN with fewer than two such models or a constant
    column."""
    both = table[
        np.isfinite(table["ours_mean"].astype(float))
        & np.isfinite(table["paper_mean"].astype(float))
    ]
    n = len(both)
    if n < 2:
        return RankCorrelation(float("nan"), float("nan"), n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        result = stats.spearmanr(both["ours_mean"].astype(float), both["paper_mean"].astype(float))
    return RankCorrelation(float(result.statistic), float(result.pvalue), n)


def metrics_resumes(metrics_files: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """``data, model, evaluation, lr, seed, resumes`` of each ``metrics.json`` (``resumes``
    None where the file predates the key), to join to a runs table that lacks it."""
    rows = []
    for path in metrics_files:
        metrics = json.loads(Path(path).read_text())
        p = metrics["params"]
        rows.append(
            {
                "data": p["data_name"],
                "model": p["model"],
                "evaluation": p["evaluation"],
                "lr": p["lr"],
                "seed": p["seed"],
                "resumes": metrics.get("resumes"),
            }
        )
    return pd.DataFrame(rows, columns=["data", "model", "evaluation", "lr", "seed", "resumes"])


def write_verdict(
    metrics_files: Iterable[str | os.PathLike],
    data: str,
    evaluation: int,
    csv: str | os.PathLike,
    runs_csv: str | os.PathLike,
    paper_summary: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the verdict table (``csv``) and the per-run table (``runs_csv``) of one
    (data, evaluation) from its reported runs' ``metrics.json`` (atomically); returns both."""
    metrics_files = list(metrics_files)
    runs = runs_table(metrics_files)
    if "resumes" not in runs:  # runs.csv does not carry it (yet)
        keys = ["data", "model", "evaluation", "lr", "seed"]
        runs = runs.merge(metrics_resumes(metrics_files), on=keys, how="left")
    per_run = reproduction_runs(runs, data, evaluation)
    table = verdict_table(per_run, data, evaluation, paper_summary)
    write_csv(csv, table)
    write_csv(runs_csv, per_run)
    return table, per_run
