"""The models the paper lacks (e.g. gaussder, riesz) against the paper's models.

A newer model's claim is that it generalises across scales better than the
paper's models. Two comparisons of one (data, evaluation), both by a two-sided
Welch t-test from summary statistics (:func:`scalecnn.reproduction.welch_p_value`):

* :func:`against_best_paper_model` — against the paper model with the highest mean
  among our runs (same protocol, same code, our seeds on both sides);
* :func:`against_published_runs` — against the paper's published runs of every
  paper model (mean, standard deviation and run count of ``paper_runs_summary.csv``):
  whether it beats the paper's own results, whatever our runs of the paper's models
  gave.

Each answer is ``better`` or ``worse`` (p < alpha, by the sign of the difference),
``not distinguishable`` (p >= alpha) or ``not testable`` (fewer than two ok seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalecnn.plots import style
from scalecnn.plots.paper import load_paper_summary
from scalecnn.reproduction import ALPHA, NO_PAPER_VALUE, welch_p_value

BETTER = "better"
WORSE = "worse"
NOT_DISTINGUISHABLE = "not distinguishable"
NOT_TESTABLE = "not testable"
"""Answer of a comparison whose Welch test cannot be computed (fewer than two seeds)."""


def comparison_answer(diff: float, p_value: float, alpha: float = ALPHA) -> str:
    """Is the first of two compared models ``better`` or ``worse`` (two-sided Welch
    p < alpha, by the sign of ``diff``), ``not distinguishable`` (p >= alpha) or
    ``not testable`` (p is NaN)?"""
    if not np.isfinite(p_value):
        return NOT_TESTABLE
    if p_value >= alpha:
        return NOT_DISTINGUISHABLE
    return BETTER if diff > 0 else WORSE


@dataclass(frozen=True)
class Comparison:
    """Our ``model`` against our best paper model ``best`` (highest mean) of one table."""

    model: str
    best: str
    mean: float
    best_mean: float
    diff: float
    p_value: float

    def answer(self, alpha: float = ALPHA) -> str:
        """``better`` / ``worse`` (Welch p < alpha), ``not distinguishable`` (p >= alpha),
        ``not testable`` (a side with fewer than two ok seeds)."""
        return comparison_answer(self.diff, self.p_value, alpha)


def against_best_paper_model(table: pd.DataFrame, model: str) -> Comparison | None:
    """``model`` against the paper model with the highest mean of our runs in ``table``
    (a :func:`~scalecnn.reproduction.verdict_table`), by a two-sided Welch t-test between
    our two sets of seeds;
    ``None`` when ``table`` lacks ``model`` or has no paper model with a mean."""
    rows = table.set_index("model")
    paper = table[(table["verdict"] != NO_PAPER_VALUE) & np.isfinite(table["ours_mean"])]
    if model not in rows.index or paper.empty:
        return None
    best = paper.loc[paper["ours_mean"].astype(float).idxmax()]
    new = rows.loc[model]
    p_value = welch_p_value(
        float(new["ours_mean"]),
        float(new["ours_std"]),
        int(new["seeds"]),
        float(best["ours_mean"]),
        float(best["ours_std"]),
        int(best["seeds"]),
    )
    return Comparison(
        model=model,
        best=str(best["model"]),
        mean=float(new["ours_mean"]),
        best_mean=float(best["ours_mean"]),
        diff=float(new["ours_mean"]) - float(best["ours_mean"]),
        p_value=p_value,
    )


PUBLISHED_COLUMNS = [
    "paper_model",
    "paper_mean",
    "paper_std",
    "paper_runs",
    "mean",
    "std",
    "seeds",
    "diff",
    "p_value",
    "answer",
]


def against_published_runs(
    table: pd.DataFrame,
    model: str,
    data: str,
    evaluation: int,
    paper_summary: pd.DataFrame | None = None,
    *,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """``model`` (our seeds in ``table``, a :func:`~scalecnn.reproduction.verdict_table`)
    against the paper's published runs of every paper model of (data, evaluation): one row
    per paper model in the paper's order, columns :data:`PUBLISHED_COLUMNS`
    (``diff = mean - paper_mean``, ``p_value`` of a two-sided Welch t-test from the
    summary statistics, ``answer`` of :func:`comparison_answer`).

    Whether a newer model beats the paper's results needs the paper's runs, not ours: our
    runs of the paper's models may differ from the paper's (the verdict). Empty when
    ``table`` lacks ``model`` or the paper has no runs of (data, evaluation).
    """
    paper = load_paper_summary() if paper_summary is None else paper_summary
    paper = paper[(paper["data"] == data) & (paper["evaluation"].astype(int) == int(evaluation))]
    rows = table.set_index("model")
    if model not in rows.index or paper.empty:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    new = rows.loc[model]
    mean, std, n = float(new["ours_mean"]), float(new["ours_std"]), int(new["seeds"])
    paper = paper.set_index("model")
    out = []
    for paper_model in style.model_order(paper.index):
        p_mean = float(paper.at[paper_model, "test_acc_mean"])
        p_std = float(paper.at[paper_model, "test_acc_std"])
        p_runs = int(paper.at[paper_model, "runs"])
        p_value = welch_p_value(mean, std, n, p_mean, p_std, p_runs)
        out.append(
            {
                "paper_model": paper_model,
                "paper_mean": p_mean,
                "paper_std": p_std,
                "paper_runs": p_runs,
                "mean": mean,
                "std": std,
                "seeds": n,
                "diff": mean - p_mean,
                "p_value": p_value,
                "answer": comparison_answer(mean - p_mean, p_value, alpha),
            }
        )
    return pd.DataFrame(out, columns=PUBLISHED_COLUMNS)
