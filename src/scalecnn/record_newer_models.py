"""The record's part on the models the paper lacks against the paper's published runs.

Why: a newer model's claim (for gaussder: Perzanowski & Lindeberg, arXiv 2409.11140)
is about the paper's results, so the record tests each such model against the paper's
published runs of every paper model (:func:`scalecnn.newer_models.against_published_runs`),
besides our best paper model (:func:`scalecnn.record_markdown.findings`): a table per
(data, evaluation) and one finding per model.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from scalecnn.newer_models import (
    BETTER,
    NOT_DISTINGUISHABLE,
    NOT_TESTABLE,
    WORSE,
    against_published_runs,
)
from scalecnn.plots import style
from scalecnn.record_format import fmt_diff, fmt_num, fmt_p, markdown_table
from scalecnn.reproduction import ALPHA, NO_PAPER_VALUE

CLAIMS: dict[str, str] = {
    "gaussder": (
        "The 2024 claim that Gaussian derivative networks generalise better across scales "
        "on STIR than the paper's models (Perzanowski & Lindeberg, arXiv 2409.11140; "
        "J. Math. Imaging Vis. 2025)"
    ),
}
"""A published claim per newer model that it beats the paper's models; the record says
whether it holds (better than every paper model's published runs) or not."""


def published_comparisons(
    table: pd.DataFrame,
    data: str,
    evaluation: int,
    paper_summary: pd.DataFrame | None = None,
    alpha: float = ALPHA,
) -> dict[str, pd.DataFrame]:
    """Model the paper lacks → its comparison with the paper's published runs of every
    paper model (:func:`scalecnn.newer_models.against_published_runs`), for the models of
    ``table`` (a verdict table) with an ok seed and a paper with runs of (data, evaluation)."""
    out = {}
    for model in table.loc[table["verdict"] == NO_PAPER_VALUE, "model"]:
        comp = against_published_runs(
            table, str(model), data, evaluation, paper_summary, alpha=alpha
        )
        if not comp.empty and pd.notna(comp["mean"].iloc[0]):
            out[str(model)] = comp
    return out


def _answer(answer: str) -> str:
    return f"**{answer}**" if answer in (BETTER, WORSE) else answer


def published_markdown(comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA) -> str:
    """One table over the paper models (rows) with, per model the paper lacks, its
    difference from the paper's published mean, the Welch p and the answer; under it, our
    mean of each such model."""
    models = list(comparisons)
    first = comparisons[models[0]]
    header = ["paper model", "paper mean ± std [%] (runs)"]
    for model in models:
        label = style.model_label(model)
        header += [f"{label} − paper [pp]", f"p ({label})", f"{label} is"]
    rows = []
    for i, paper_row in enumerate(first.itertuples(index=False)):
        row = [
            style.model_label(paper_row.paper_model),
            f"{paper_row.paper_mean:.2f} ± {paper_row.paper_std:.2f} ({paper_row.paper_runs})",
        ]
        for model in models:
            r = comparisons[model].iloc[i]
            row += [fmt_diff(r["diff"]), fmt_p(r["p_value"]), _answer(str(r["answer"]))]
        rows.append(row)
    ours = "; ".join(f"{style.model_label(m)} {_ours(c)}" for m, c in comparisons.items())
    return "\n".join(
        [
            markdown_table(header, rows, [False, True] + [True, True, False] * len(models)),
            "",
            f"Ours: {ours}. Answer: better or worse when the two-sided Welch t-test gives "
            f"p < {alpha:g}, else not distinguishable (not testable: fewer than two ok seeds).",
        ]
    )


def _ours(comp: pd.DataFrame) -> str:
    r = comp.iloc[0]
    return f"{fmt_num(r['mean'])} ± {fmt_num(r['std'])} % over {int(r['seeds'])} ok seed(s)"


def _names(comp: pd.DataFrame, answer: str) -> list[str]:
    return [style.model_label(m) for m in comp.loc[comp["answer"] == answer, "paper_model"]]


def standing(comp: pd.DataFrame) -> str:
    """Where a model stands against the paper's published runs, e.g. ``better than 9 of
    the 11 paper models' published runs; not distinguishable from Pixel pool; worse than
    DISCO``."""
    n = len(comp)
    better = _names(comp, BETTER)
    if len(better) == n:
        text = f"better than all {n} paper models' published runs"
    else:
        count = str(len(better)) if better else "none"
        text = f"better than {count} of the {n} paper models' published runs"
    same = _names(comp, NOT_DISTINGUISHABLE)
    if same:
        text += f"; not distinguishable from {', '.join(same)}"
    worse = _names(comp, WORSE)
    if worse:
        text += f"; worse than {', '.join(worse)}"
    return text


def published_finding(model: str, comp: pd.DataFrame, alpha: float = ALPHA) -> str:
    """One sentence: where ``model`` stands against the paper's published runs and, for a
    model with a claim (:data:`CLAIMS`), whether the claim holds (better than every paper
    model's published runs at p < alpha)."""
    label = style.model_label(model)
    ours = _ours(comp)
    test = f"(two-sided Welch t-test, p < {alpha:g})"
    untestable = (comp["answer"] == NOT_TESTABLE).all()
    if model in CLAIMS:
        if untestable:
            return (
                f"{CLAIMS[model]} cannot be tested here: {label} has "
                f"{int(comp['seeds'].iloc[0])} ok seed(s), the Welch test needs two."
            )
        holds = (comp["answer"] == BETTER).all()
        verdict = "holds" if holds else "does not hold"
        return (
            f"{CLAIMS[model]} **{verdict}** here: {label} (ours: {ours}) is {standing(comp)} "
            f"{test}."
        )
    head = f"{label} (not in the paper; ours: {ours}) against the paper's published runs: "
    if untestable:
        return head + "cannot be tested (the Welch test needs two ok seeds)."
    return head + f"{standing(comp)} {test}."
