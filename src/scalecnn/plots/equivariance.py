"""Scale equivariance error vs test accuracy: Fig. 6 and Suppl. Fig. 3.

Input: ``equivariance.csv`` (``data, model, eval, lr, seed, test_acc,
stage1_error, stage2_error``; ``test_acc`` in percent, errors already
averaged over the pairs the paper uses for the evaluation). One point per run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from scalecnn.plots import style
from scalecnn.plots.common import (
    OK,
    add_note,
    excluded_note,
    mark_no_ok_runs,
    note_run_counts,
    prepare,
    run_counts,
    subset,
)

FIG6_DATA = "emoji"
FIG6_EVALUATION = 2
FIG6_EXCLUDED_MODELS: tuple[str, ...] = ("energy_pool",)
"""Fig. 6 shows standard, kanazawa, pixel_pool, slice_pool (and any user model)."""

SUPPL3_DATASETS: tuple[str, ...] = ("emoji", "mnist", "trafficsign")


def _prepare(eq: pd.DataFrame, stage: int, runs, selection, what: str) -> tuple[pd.DataFrame, str]:
    if stage not in (1, 2):
        raise ValueError(f"{what}: stage must be 1 or 2, got {stage!r}")
    column = f"stage{stage}_error"
    frame = prepare(eq, ["test_acc", column], what=what, runs=runs, selection=selection)
    return frame, column


def _scatter(
    ax: Axes, frame: pd.DataFrame, models: Sequence[str], column: str, logx: bool, size: float
) -> None:
    for model in models:
        part = frame[(frame["model"] == model) & frame[OK]]
        if part.empty:
            continue
        x = part[column].to_numpy(float)
        if logx:
            x = np.where(x > 0, x, np.nan)
        ax.scatter(
            x,
            part["test_acc"].to_numpy(float),
            s=size,
            alpha=0.75,
            linewidths=0,
            color=style.model_color(model),
            label=style.model_label(model),
            zorder=3,
        )
    if logx:
        ax.set_xscale("log")
        readable_log_ticks(ax, n=4 if size > 6 else 3)
    ax.grid(True, axis="both")


LOG_LADDERS: tuple[tuple[float, ...], ...] = (
    (1,),
    (1, 3),
    (1, 2, 5),
    (1, 2, 3, 5),
    (1, 1.5, 2, 3, 5, 7),
    (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8),
)
"""Mantissas of the tick values of a short log axis, roundest first."""


def nice_log_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """Three to ``n`` round values in ``[lo, hi]`` (0 < lo < hi) for a log axis: the first
    ladder of :data:`LOG_LADDERS` (times powers of ten) with at least three values in the
    range (every k-th if more than ``n``), else, for a narrow range, a linear 1-2-2.5-5
    ladder (a log axis is nearly linear there)."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for ladder in LOG_LADDERS:
        values = sorted(
            v
            for v in (float(f"{m * 10.0**e:.6g}") for e in range(first, last + 1) for m in ladder)
            if lo <= v <= hi
        )
        if len(values) >= 3:
            return values[:: math.ceil(len(values) / n)]
    linear = MaxNLocator(nbins=max(n - 1, 1), steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return [float(f"{v:.6g}") for v in linear if lo <= v <= hi]


def readable_log_ticks(ax: Axes, n: int = 4) -> None:
    """Label a log x axis that spans less than two decades with a few plain numbers.

    Why: matplotlib labels the minor ticks of such an axis (``1.2 × 10⁰``, ``1.3 × 10⁰``,
    …), and the labels run into each other. The minor ticks stay, unlabelled; a wider axis
    keeps matplotlib's labels (powers of ten).
    """
    if ax.get_xscale() != "log":
        return
    lo, hi = ax.get_xlim()
    if not (0 < lo < hi) or hi / lo >= 100:
        return
    ticks = nice_log_ticks(lo, hi, n)
    if not ticks:
        return
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend(fig: Figure, models: Sequence[str], ncol: int = 6) -> None:
    handles = [
        Line2D([], [], ls="", marker="o", color=style.model_color(m), label=style.model_label(m))
        for m in models
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(models), ncol))


def plot_equivariance(
    equivariance: pd.DataFrame,
    *,
    data: str = FIG6_DATA,
    evaluation: int = FIG6_EVALUATION,
    exclude_models: Sequence[str] = FIG6_EXCLUDED_MODELS,
    stage: int = 2,
    logx: bool = True,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
) -> Figure:
    """Fig. 6: equivariance error (stage 2) vs test accuracy, one point per run.

    Models: all present except ``exclude_models`` (energy_pool), i.e. the
    paper's standard, kanazawa, pixel_pool, slice_pool plus any user model.
    Runs with a non-positive error cannot be placed on the log axis; they are
    not drawn but counted like excluded runs in the note (``logx=False`` draws
    them).
    """
    what = "Fig. 6"
    frame, column = _prepare(equivariance, stage, runs, selection, f"{what} (equivariance)")
    frame = subset(frame, what=what, data=data, evaluation=evaluation)
    frame = frame[~frame["model"].isin(list(exclude_models))]
    if frame.empty or not frame[OK].any():
        raise ValueError(
            f"{what}: no ok runs for data={data!r}, evaluation={evaluation} once "
            f"{list(exclude_models)} are left out"
        )
    models = style.model_order(frame["model"])
    counts = run_counts(frame, ["model"]).set_index("model")
    with style.style_context():
        fig = Figure(figsize=(3.6, 3.2), layout="constrained")
        ax = fig.subplots()
        _scatter(ax, frame, models, column, logx, size=10)
        ax.set_title(f"{style.data_label(data)}, {style.eval_label(evaluation)}")
        ax.set_xlabel(f"Equivariance error (stage {stage})")
        ax.set_ylabel("Test accuracy [%]")
        _legend(fig, models, ncol=2)
        note = excluded_note(frame)
        if logx:
            nonpos = frame[frame[OK] & ~(frame[column] > 0)]
            if len(nonpos):
                note += f" {len(nonpos)} ok run(s) with error <= 0 not shown on the log axis."
        note += (
            " n per model: "
            + ", ".join(f"{style.model_label(m)} {int(counts.loc[m, 'n_ok'])}" for m in models)
            + "."
        )
        add_note(fig, note)
    return fig


def plot_equivariance_grid(
    equivariance: pd.DataFrame,
    *,
    datasets: Sequence[str] | None = SUPPL3_DATASETS,
    evaluations: Sequence[int] | None = None,
    stage: int = 2,
    logx: bool = True,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
) -> Figure:
    """Suppl. Fig. 3: the Fig. 6 scatter for each dataset (rows) × evaluation (columns)
    present, all models present. ``datasets=None`` takes every dataset in the table."""
    what = "Suppl. Fig. 3"
    frame, column = _prepare(equivariance, stage, runs, selection, f"{what} (equivariance)")
    frame = subset(frame, what=what, data=datasets, evaluation=evaluations)
    rows = style.data_order(frame["data"])
    cols = style.eval_order(frame["evaluation"])
    models = style.model_order(frame["model"])
    counts = run_counts(frame, ["data", "evaluation"]).set_index(["data", "evaluation"])
    with style.style_context():
        fig = Figure(figsize=(2.3 * len(cols) + 0.5, 2.1 * len(rows) + 0.8), layout="constrained")
        axes = fig.subplots(len(rows), len(cols), sharey="row", squeeze=False)
        for ri, data in enumerate(rows):
            for ci, evaluation in enumerate(cols):
                ax = axes[ri, ci]
                cell = frame[(frame["data"] == data) & (frame["evaluation"] == evaluation)]
                if cell[OK].any():
                    _scatter(ax, cell, models, column, logx, size=5)
                else:
                    mark_no_ok_runs(ax)
                note_run_counts(ax, counts, data, evaluation)
                if ri == 0:
                    ax.set_title(style.eval_label(evaluation))
                if ci == 0:
                    ax.set_ylabel(f"{style.data_label(data)}\ntest acc. [%]")
                if ri == len(rows) - 1:
                    ax.set_xlabel(f"Equiv. error (stage {stage})")
        _legend(fig, models)
        note = excluded_note(frame)
        if logx:
            nonpos = frame[frame[OK] & ~(frame[column] > 0)]
            if len(nonpos):
                note += f" {len(nonpos)} ok run(s) with error <= 0 not shown on the log axes."
        add_note(fig, note)
    return fig
