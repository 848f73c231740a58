"""The reproduction verdict as a figure (:mod:`scalecnn.reproduction`).

:func:`plot_reproduction` — per model (the paper's order): our seeds as dots and
our mean as a bar-shaped marker, beside the paper's mean ± standard deviation as
an error bar; the verdict under each model's name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scalecnn.plots import style
from scalecnn.plots.common import add_note

_OFFSET = 0.18  # horizontal distance of ours (left) and the paper's (right) from the tick
_VERDICT_MARK = {"consistent": "", "differs": " *", "insufficient": " ?", "not in the paper": ""}


def plot_reproduction(
    verdict: pd.DataFrame,
    runs: pd.DataFrame,
    *,
    data: str,
    evaluation: int,
    note: str | None = None,
) -> Figure:
    """Our test accuracies beside the paper's for one (data, evaluation).

    Args:
        verdict: :func:`scalecnn.reproduction.verdict_table`.
        runs: :func:`scalecnn.reproduction.reproduction_runs` (only ok runs are drawn).
        data, evaluation: for the title.
        note: a first line under the figure (e.g. how the protocol differs from the paper's,
            :func:`scalecnn.protocol.protocol_note`).

    Raises:
        ValueError: ``verdict`` is empty.
    """
    if verdict.empty:
        raise ValueError("reproduction figure: the verdict table is empty")
    models = style.model_order(verdict["model"])
    table = verdict.set_index("model").loc[models]
    x = np.arange(len(models), dtype=float)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure from the same data
    with style.style_context():
        fig = Figure(figsize=(max(4.0, 0.62 * len(models) + 1.4), 3.4), layout="constrained")
        ax = fig.subplots()
        for i, model in enumerate(models):
            color = style.model_color(model)
            mine = runs[(runs["model"] == model) & (runs["status"] == "ok")]
            acc = mine["test_acc"].astype(float).to_numpy()
            acc = acc[np.isfinite(acc)]
            jitter = rng.uniform(-0.05, 0.05, size=len(acc))
            ax.scatter(
                np.full(len(acc), x[i] - _OFFSET) + jitter,
                acc,
                s=12,
                color=color,
                alpha=0.75,
                linewidths=0,
                zorder=3,
            )
            mean = float(table.at[model, "ours_mean"])
            if np.isfinite(mean):
                ax.scatter(
                    [x[i] - _OFFSET], [mean], marker="_", s=220, color="black", lw=1.6, zorder=4
                )
            p_mean = float(table.at[model, "paper_mean"])
            if np.isfinite(p_mean):
                ax.errorbar(
                    [x[i] + _OFFSET],
                    [p_mean],
                    yerr=[float(table.at[model, "paper_std"])],
                    fmt="s",
                    ms=4,
                    color=color,
                    mfc="white",
                    capsize=2.5,
                    lw=1.0,
                    zorder=3,
                )
        labels = [
            style.model_label(m) + _VERDICT_MARK.get(str(table.at[m, "verdict"]), "")
            for m in models
        ]
        ax.set_xticks(x, labels, rotation=35, ha="right")
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0, 100)
        ax.set_ylabel("Test accuracy [%]")
        ax.grid(True, axis="y")
        ax.set_title(
            f"{style.data_label(data)}, {style.eval_label(evaluation)}: ours vs the paper",
            fontsize=9,
        )
        handles = [
            Line2D([], [], ls="", marker="o", color="#666666", ms=4, label="ours: one seed"),
            Line2D([], [], ls="", marker="_", color="black", ms=10, mew=1.6, label="ours: mean"),
            Line2D(
                [],
                [],
                ls="-",
                marker="s",
                color="#666666",
                mfc="white",
                ms=4,
                label="paper: mean ± std",
            ),
        ]
        ax.legend(handles=handles, loc="upper left", fontsize=6, frameon=False)
        seeds = sorted({int(s) for s in table["seeds"]})
        n_seeds = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
        text = (
            f"Ok seeds per model: {n_seeds}. * differs from the paper (two-sided Welch t-test, "
            "p < 0.01); ? too few ok seeds for the test."
        )
        if note:
            text = f"{note[:1].upper()}{note[1:]}.\n{text}"
        add_note(fig, text)
    return fig
