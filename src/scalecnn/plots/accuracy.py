"""Test accuracy per model: Fig. 4 (summary) and Suppl. Fig. 1 (box plots).

Input: ``runs.csv`` (``data, model, evaluation, lr, seed, status, test_acc``,
accuracies in percent), optionally with ``selection.csv`` to keep the chosen
learning rate only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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

FIG4_EXCLUDED_MODELS: tuple[str, ...] = ("energy_pool", "conv3d")
"""Models the paper leaves out of Fig. 4 (9 of 11 remain)."""

FIG4_PANELS: tuple[tuple[int, str], ...] = ((2, "mean"), (4, "median"))
"""(evaluation, statistic) of the left and right panel of Fig. 4."""

BASELINE_MODEL = "standard"


def plot_accuracy_summary(
    runs: pd.DataFrame,
    *,
    selection: pd.DataFrame | None = None,
    exclude_models: Sequence[str] = FIG4_EXCLUDED_MODELS,
    panels: Sequence[tuple[int, str]] = FIG4_PANELS,
    top: int = 3,
) -> Figure:
    """Fig. 4: test accuracy per model, one marker per dataset.

    Left panel: Mid2Rest means; right panel: All2All medians (``panels``).
    Every model present except ``exclude_models`` (energy_pool, conv3d) gets a
    column; the standard model is drawn as a dotted horizontal line per
    dataset instead. Per dataset and panel the ``top`` best of the drawn
    columns are filled markers, the rest hollow. Only models and datasets
    present in ``runs`` appear; a panel whose evaluation has no runs says so.
    Raises ``ValueError`` if none of the panels' evaluations has a run.
    """
    frame = prepare(runs, ["test_acc"], what="Fig. 4 (runs)", selection=selection)
    evals = [int(e) for e, _ in panels]
    frame = subset(frame, what="Fig. 4", evaluation=evals)
    frame = frame[~frame["model"].isin(list(exclude_models))]
    if frame.empty or not frame[OK].any():
        raise ValueError(
            f"Fig. 4: no ok runs for evaluation in {evals} once {list(exclude_models)} are left out"
        )
    models = style.model_order(frame["model"])
    columns = [m for m in models if m != BASELINE_MODEL]
    datasets = style.data_order(frame["data"])
    xpos = {m: i for i, m in enumerate(columns)}
    dodge = np.linspace(-0.22, 0.22, len(datasets)) if len(datasets) > 1 else np.zeros(1)

    with style.style_context():
        fig = Figure(figsize=(7.2, 3.0), layout="constrained")
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, (evaluation, stat) in zip(axes, panels, strict=True):
            ax.set_title(f"{style.eval_label(evaluation)} ({stat})")
            part = frame[(frame["evaluation"] == evaluation) & frame[OK]]
            if part.empty:
                ax.text(
                    0.5,
                    0.5,
                    f"no ok runs for {style.eval_label(evaluation)}",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="#777777",
                )
            values = part.groupby(["data", "model"], observed=True)["test_acc"].agg(stat)
            for di, data in enumerate(datasets):
                color = style.data_color(data)
                marker = style.data_marker(data)
                if (data, BASELINE_MODEL) in values.index:
                    ax.axhline(
                        values[(data, BASELINE_MODEL)], ls=":", lw=1.2, color=color, zorder=1
                    )
                vals = [(m, values[(data, m)]) for m in columns if (data, m) in values.index]
                if not vals:
                    continue
                ranked = sorted(vals, key=lambda mv: mv[1], reverse=True)
                best = {m for m, _ in ranked[:top]}
                xs = np.array([xpos[m] + dodge[di] for m, _ in vals])
                ys = np.array([v for _, v in vals])
                filled = np.array([m in best for m, _ in vals])
                if filled.any():
                    ax.scatter(
                        xs[filled],
                        ys[filled],
                        marker=marker,
                        s=30,
                        color=color,
                        edgecolors=color,
                        linewidths=1.0,
                        zorder=3,
                    )
                if (~filled).any():
                    ax.scatter(
                        xs[~filled],
                        ys[~filled],
                        marker=marker,
                        s=30,
                        facecolors="white",
                        edgecolors=color,
                        linewidths=1.0,
                        zorder=3,
                    )
            ax.set_xticks(range(len(columns)))
            ax.set_xticklabels([style.model_label(m) for m in columns], rotation=40, ha="right")
            ax.set_xlim(-0.6, len(columns) - 0.4)
        axes[0].set_ylabel("Test accuracy [%]")
        handles = [
            Line2D(
                [],
                [],
                ls="",
                marker=style.data_marker(d),
                color=style.data_color(d),
                label=style.data_label(d),
            )
            for d in datasets
        ]
        handles.append(
            Line2D([], [], ls="", marker="o", color="#555555", label=f"top {top} (filled)")
        )
        if BASELINE_MODEL in models:
            handles.append(
                Line2D([], [], ls=":", color="#555555", label=style.model_label(BASELINE_MODEL))
            )
        fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))
        add_note(fig, excluded_note(frame))
    return fig


def _boxes(ax, ok: pd.DataFrame, models: Sequence[str], palette: dict[str, str]) -> None:
    """One box per model present (quartiles, whiskers at 1.5 IQR, no fliers: the points
    are drawn separately)."""
    present = [(i, m) for i, m in enumerate(models) if (ok["model"] == m).any()]
    data = [ok.loc[ok["model"] == m, "test_acc"].to_numpy(float) for _, m in present]
    bp = ax.boxplot(
        data,
        positions=[i for i, _ in present],
        widths=0.6,
        showfliers=False,
        patch_artist=True,
        manage_ticks=False,
    )
    for k, (_, m) in enumerate(present):
        color = palette[m]
        bp["boxes"][k].set(facecolor=color, alpha=0.35, edgecolor=color, linewidth=0.8)
        bp["medians"][k].set(color=color, linewidth=1.2)
        for art in (*bp["whiskers"][2 * k : 2 * k + 2], *bp["caps"][2 * k : 2 * k + 2]):
            art.set(color=color, linewidth=0.8)


def plot_accuracy_boxes(
    runs: pd.DataFrame,
    *,
    selection: pd.DataFrame | None = None,
    datasets: Sequence[str] | None = None,
    evaluations: Sequence[int] | None = None,
    seed: int = 0,
) -> Figure:
    """Suppl. Fig. 1: grid dataset × evaluation of test-accuracy box plots per model.

    Rows are the datasets, columns the evaluations present (or those asked
    for); boxes for every model present, each run a jittered point (jitter
    from ``seed``, so the figure is reproducible). Each panel states its
    number of ok and excluded runs.
    """
    frame = prepare(runs, ["test_acc"], what="Suppl. Fig. 1 (runs)", selection=selection)
    frame = subset(frame, what="Suppl. Fig. 1", data=datasets, evaluation=evaluations)
    rows = style.data_order(frame["data"])
    cols = style.eval_order(frame["evaluation"])
    models = style.model_order(frame["model"])
    palette = style.model_palette(models)
    labels = [style.model_label(m) for m in models]
    rng = np.random.default_rng(seed)
    counts = run_counts(frame, ["data", "evaluation"]).set_index(["data", "evaluation"])

    with style.style_context():
        width = min(2.2 + 0.28 * len(models) * len(cols), 14.0)
        fig = Figure(figsize=(width, 0.4 + 2.3 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), len(cols), sharex=True, squeeze=False)
        for ri, data in enumerate(rows):
            for ci, evaluation in enumerate(cols):
                ax = axes[ri, ci]
                cell = frame[(frame["data"] == data) & (frame["evaluation"] == evaluation)]
                ok = cell[cell[OK]]
                if not ok.empty:
                    _boxes(ax, ok, models, palette)
                    pos = ok["model"].map({m: i for i, m in enumerate(models)}).to_numpy(float)
                    jitter = rng.uniform(-0.2, 0.2, size=len(ok))
                    ax.scatter(
                        pos + jitter,
                        ok["test_acc"].to_numpy(float),
                        s=3,
                        linewidths=0,
                        c=[palette[m] for m in ok["model"]],
                        zorder=3,
                    )
                else:
                    mark_no_ok_runs(ax)
                note_run_counts(ax, counts, data, evaluation, missing="n=0")
                ax.set_xlabel("")
                ax.set_ylabel(f"{style.data_label(data)}\ntest acc. [%]" if ci == 0 else "")
                if ri == 0:
                    ax.set_title(style.eval_label(evaluation))
                ax.set_xticks(range(len(models)))
                ax.set_xticklabels(labels, rotation=60, ha="right")
                ax.set_xlim(-0.6, len(models) - 0.4)
        add_note(fig, excluded_note(frame))
    return fig
