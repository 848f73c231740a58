"""Scale generalisation: Fig. 5 (one dataset) and Suppl. Fig. 2 (all datasets).

Input: the ``generalization_{data}.csv`` tables concatenated (``model, data,
eval, lr, seed, s17 … s64``, accuracies as fractions). Figures show the mean
over a configuration's ok runs, in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scalecnn.plots import style
from scalecnn.plots.common import (
    CONFIG_KEYS,
    OK,
    SIZE_COLUMNS,
    add_note,
    draw_size_grid,
    excluded_note,
    mark_no_ok_runs,
    prepare,
    run_counts,
    shade_training_sizes,
    subset,
)
from scalecnn.study import ALL_SIZES

FIG5_DATA = "mnist"
FIG5_EVALUATIONS: tuple[int, ...] = (1, 2, 3)


def prepare_generalization(
    generalization: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    what: str = "generalization",
) -> pd.DataFrame:
    """Normalised generalisation table with ``status`` and ``_ok`` (see ``common``)."""
    return prepare(generalization, SIZE_COLUMNS, what=what, runs=runs, selection=selection)


def generalization_means(
    generalization: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (data, model, evaluation): ``n_ok``, ``n_excluded`` and the mean of ok runs
    at each size ``s17 … s64`` in percent (NaN where no run is ok)."""
    frame = prepare_generalization(generalization, runs=runs, selection=selection)
    if frame.empty:
        raise ValueError("generalization: the table is empty")
    return _means(frame)


def _means(frame: pd.DataFrame) -> pd.DataFrame:
    counts = run_counts(frame)
    ok = frame[frame[OK]]
    means = (ok.groupby(CONFIG_KEYS, observed=True)[SIZE_COLUMNS].mean() * 100.0).reset_index()
    return counts.merge(means, on=CONFIG_KEYS, how="left")


def _draw_panel(ax: Axes, means: pd.DataFrame, models: Sequence[str], **kwargs) -> None:
    sizes = np.array(ALL_SIZES)
    for model in models:
        row = means[means["model"] == model]
        if row.empty or row["n_ok"].iloc[0] == 0:
            continue
        ax.plot(
            sizes,
            row[SIZE_COLUMNS].iloc[0].to_numpy(float),
            color=style.model_color(model),
            label=style.model_label(model),
            **kwargs,
        )


def _model_legend(fig: Figure, models: Sequence[str], ncol: int | None = None) -> None:
    handles = [
        Line2D([], [], color=style.model_color(m), label=style.model_label(m)) for m in models
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=ncol or min(len(models), 6))


def plot_generalization(
    generalization: pd.DataFrame,
    *,
    data: str = FIG5_DATA,
    evaluations: Sequence[int] = FIG5_EVALUATIONS,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
) -> Figure:
    """Fig. 5: mean test accuracy (%) per object size, one panel per evaluation.

    One line per model present, training sizes shaded. Only the evaluations
    among ``evaluations`` that have rows get a panel; ``ValueError`` if none.
    """
    frame = prepare_generalization(
        generalization, runs=runs, selection=selection, what="Fig. 5 (generalization)"
    )
    frame = subset(frame, what="Fig. 5", data=data, evaluation=list(evaluations))
    evals = [e for e in evaluations if (frame["evaluation"] == int(e)).any()]
    models = style.model_order(frame["model"])
    means = _means(frame)

    with style.style_context():
        fig = Figure(figsize=(2.5 * len(evals) + 0.4, 2.8), layout="constrained")
        axes = fig.subplots(1, len(evals), sharey=True, squeeze=False)[0]
        for ax, evaluation in zip(axes, evals, strict=True):
            shade_training_sizes(ax, evaluation)
            _draw_panel(ax, means[means["evaluation"] == int(evaluation)], models)
            ax.set_title(f"{style.data_label(data)}, {style.eval_label(evaluation)}")
            ax.set_xlabel("Object size [px]")
            ax.set_xlim(17, 64)
            ax.set_ylim(0, 100)
        axes[0].set_ylabel("Test accuracy [%]")
        _model_legend(fig, models)
        add_note(fig, excluded_note(frame))
    return fig


def plot_generalization_grid(
    generalization: pd.DataFrame,
    *,
    datasets: Sequence[str] | None = None,
    evaluations: Sequence[int] | None = None,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
) -> Figure:
    """Suppl. Fig. 2: the Fig. 5 panels for every dataset (rows) × evaluation (columns)
    present, all models present."""
    frame = prepare_generalization(
        generalization, runs=runs, selection=selection, what="Suppl. Fig. 2 (generalization)"
    )
    frame = subset(frame, what="Suppl. Fig. 2", data=datasets, evaluation=evaluations)
    rows = style.data_order(frame["data"])
    cols = style.eval_order(frame["evaluation"])
    models = style.model_order(frame["model"])
    means = _means(frame)

    def draw_panel(ax: Axes, data: str, evaluation: int) -> None:
        part = means[(means["data"] == data) & (means["evaluation"] == evaluation)]
        if part.empty or not (part["n_ok"] > 0).any():
            mark_no_ok_runs(ax)
        _draw_panel(ax, part, models, lw=1.0)

    with style.style_context():
        fig = Figure(figsize=(2.1 * len(cols) + 0.5, 1.9 * len(rows) + 0.9), layout="constrained")
        draw_size_grid(fig, rows, cols, draw_panel)
        _model_legend(fig, models)
        add_note(fig, excluded_note(frame))
    return fig
