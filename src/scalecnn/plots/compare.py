"""This project's results beside the paper's (``scalecnn/resources``).

* :func:`compare_table` — per (data, model, evaluation) our mean test accuracy
  over ok runs (with ok and excluded counts), the paper's mean, difference, and
  how the protocol of our runs differs from the paper's (:mod:`scalecnn.protocol`).
* :func:`compare_markdown` — as Markdown (the workflow writes it and the CSV with
  :func:`scalecnn.plots.inputs.write_compare_files`).
* :func:`plot_compare_scatter` — ours vs paper with the identity line.
* :func:`plot_compare_generalization` — small multiples, one panel per model
  (:mod:`scalecnn.plots.model_grid`) for each (data, evaluation) present: our
  per-size mean with the seeds' min–max band beside the paper's mean (dashed).

Given the protocol, the table and figures say "not a reproduction: <differences>"
where it differs from the paper's (e.g. ``max 1 epoch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scalecnn.plots import style
from scalecnn.plots.common import (
    CONFIG_KEYS,
    OK,
    SIZE_COLUMNS,
    add_note,
    excluded_note,
    mark_no_ok_runs,
    normalise,
    prepare,
    run_counts,
    shade_training_sizes,
    subset,
)
from scalecnn.plots.generalization import prepare_generalization
from scalecnn.plots.model_grid import MAX_COLUMNS, grid_columns, grid_rows, model_panels
from scalecnn.plots.paper import load_paper_generalization, load_paper_summary
from scalecnn.protocol import NOT_A_REPRODUCTION, protocol_note
from scalecnn.study import ALL_SIZES

COMPARE_COLUMNS = [
    "data",
    "model",
    "evaluation",
    "n_ok",
    "n_excluded",
    "ours_mean",
    "paper_runs",
    "paper_mean",
    "diff",
    "protocol",
]


def _sort_configs(frame: pd.DataFrame) -> pd.DataFrame:
    d_rank = {d: i for i, d in enumerate(style.data_order(frame["data"]))}
    m_rank = {m: i for i, m in enumerate(style.model_order(frame["model"]))}
    out = frame.assign(_d=frame["data"].map(d_rank), _m=frame["model"].map(m_rank))
    return (
        out.sort_values(["_d", "_m", "evaluation"])
        .drop(columns=["_d", "_m"])
        .reset_index(drop=True)
    )


def compare_table(
    runs: pd.DataFrame,
    paper_summary: pd.DataFrame | None = None,
    *,
    selection: pd.DataFrame | None = None,
    protocol: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Per (data, model, evaluation) present in ``runs``: ``n_ok``, ``n_excluded``,
    ``ours_mean`` (mean test accuracy in percent over ok runs, NaN if none),
    ``paper_runs``, ``paper_mean`` (NaN where the paper has no such configuration,
    e.g. a user model), ``diff = ours_mean - paper_mean`` and ``protocol``.

    ``paper_summary`` defaults to the shipped ``paper_runs_summary.csv``.
    ``protocol`` (:func:`scalecnn.protocol.protocol_values` of the config) gives the
    column ``protocol``: :func:`scalecnn.protocol.protocol_note` for the row's dataset,
    e.g. ``"not a reproduction: max 1 epoch, 2 seeds (paper: 50)"``; empty without it.
    """
    frame = prepare(runs, ["test_acc"], what="comparison (runs)", selection=selection)
    if frame.empty:
        raise ValueError("comparison: the runs table is empty; nothing to compare")
    counts = run_counts(frame)
    means = frame[frame[OK]].groupby(CONFIG_KEYS, observed=True)["test_acc"].mean()
    ours = counts.merge(means.rename("ours_mean").reset_index(), on=CONFIG_KEYS, how="left")
    paper = normalise(
        load_paper_summary() if paper_summary is None else paper_summary,
        required=[*CONFIG_KEYS, "test_acc_mean"],
        what="paper summary",
    )
    paper = paper.rename(columns={"test_acc_mean": "paper_mean", "runs": "paper_runs"})
    if "paper_runs" not in paper.columns:
        paper["paper_runs"] = np.nan
    paper = paper[[*CONFIG_KEYS, "paper_runs", "paper_mean"]].drop_duplicates(CONFIG_KEYS)
    out = ours.merge(paper, on=CONFIG_KEYS, how="left")
    out["diff"] = out["ours_mean"] - out["paper_mean"]
    out["evaluation"] = out["evaluation"].astype(int)
    out["protocol"] = (
        [protocol_note(protocol, str(d)) for d in out["data"]] if protocol is not None else ""
    )
    return _sort_configs(out)[COMPARE_COLUMNS]


def protocol_lines(table: pd.DataFrame) -> list[str]:
    """The distinct protocol notes of a comparison table, one line each (``Protocol: …`` or
    ``Not a reproduction: …``; per dataset when they differ); none without notes."""
    if "protocol" not in table.columns:
        return []
    notes = table[["data", "protocol"]].dropna()
    notes = notes[notes["protocol"].astype(str).str.len() > 0].drop_duplicates()
    if notes.empty:
        return []
    per_data = notes["protocol"].nunique() > 1
    lines = []
    for data, note in notes.itertuples(index=False):
        where = f" ({data})" if per_data else ""
        if str(note).startswith(NOT_A_REPRODUCTION):
            rest = str(note)[len(NOT_A_REPRODUCTION) :].lstrip(": ")
            lines.append(f"Not a reproduction{where}: {rest}.")
        else:
            lines.append(f"Protocol{where}: {note}.")
        if not per_data:
            break
    return lines


def add_protocol_title(fig: Figure, lines: Sequence[str]) -> None:
    """Write the protocol lines (:func:`protocol_lines`) above the figure; red when they say
    the runs are not a reproduction."""
    if not lines:
        return
    differs = any(line.startswith("Not a reproduction") for line in lines)
    fig.suptitle(
        "\n".join(lines), fontsize=7, color="#aa0000" if differs else "#555555", ha="center"
    )


def _fmt(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{decimals}f}"
    return str(value)


def compare_markdown(table: pd.DataFrame, *, decimals: int = 1) -> str:
    """The comparison table as a Markdown pipe table (hand-written, no tabulate)."""
    if table.empty:
        raise ValueError("comparison: the table is empty")
    header = [
        "data",
        "model",
        "evaluation",
        "ok runs",
        "excluded runs",
        "ours mean [%]",
        "paper runs",
        "paper mean [%]",
        "ours − paper [pp]",
    ]
    lines = [
        "Test accuracy: this project (mean over runs with status ok) vs the paper "
        "(arXiv 2211.10288, published results).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * 6) + "|",
    ]
    protocol = protocol_lines(table)
    if protocol:
        lines[1:1] = ["", *(f"**{line}**" for line in protocol)]
    for r in table.itertuples(index=False):
        paper_runs = "–" if pd.isna(r.paper_runs) else str(int(r.paper_runs))
        diff = "–" if pd.isna(r.diff) else f"{round(float(r.diff), decimals) + 0.0:+.{decimals}f}"
        cells = [
            r.data,
            r.model,
            style.eval_label(r.evaluation),
            str(int(r.n_ok)),
            str(int(r.n_excluded)),
            _fmt(float(r.ours_mean), decimals),
            paper_runs,
            _fmt(float(r.paper_mean), decimals),
            diff,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    n_exc = int(table["n_excluded"].sum())
    lines += [
        "",
        f"{int(table['n_ok'].sum())} runs with status ok, {n_exc} excluded "
        "(status != ok or non-finite test accuracy).",
    ]
    return "\n".join(lines) + "\n"


def plot_compare_scatter(table: pd.DataFrame) -> Figure:
    """Ours vs paper mean test accuracy, one point per configuration (colour: model,
    marker: dataset; one scatter collection per dataset), identity line dashed."""
    if table.empty:
        raise ValueError("comparison scatter: the table is empty")
    both = table[
        np.isfinite(table["ours_mean"].astype(float))
        & np.isfinite(table["paper_mean"].astype(float))
    ]
    if both.empty:
        raise ValueError(
            "comparison scatter: no configuration has both our mean and the "
            "paper's (models/datasets not in the paper, or no ok runs)"
        )
    datasets = style.data_order(both["data"])
    models = style.model_order(both["model"])
    with style.style_context():
        fig = Figure(figsize=(4.8, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 100], [0, 100], ls="--", color="#999999", lw=0.8, zorder=1)
        for data in datasets:
            part = both[both["data"] == data]
            ax.scatter(
                part["paper_mean"],
                part["ours_mean"],
                marker=style.data_marker(data),
                c=[style.model_color(m) for m in part["model"]],
                s=22,
                linewidths=0.3,
                edgecolors="white",
                zorder=3,
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_aspect("equal")
        ax.grid(True, axis="both")
        ax.set_xlabel("Paper: mean test accuracy [%]")
        ax.set_ylabel("Ours: mean test accuracy [%]")
        handles = [
            Line2D(
                [],
                [],
                ls="",
                marker=style.data_marker(d),
                color="#666666",
                label=style.data_label(d),
            )
            for d in datasets
        ]
        handles += [
            Line2D(
                [], [], ls="", marker="o", color=style.model_color(m), label=style.model_label(m)
            )
            for m in models
        ]
        fig.legend(handles=handles, loc="outside right center", ncol=1)
        missing = len(table) - len(both)
        note = (
            f"{len(both)} configuration(s); {int(table['n_ok'].sum())} ok runs, "
            f"{int(table['n_excluded'].sum())} excluded (status != ok)."
        )
        if missing:
            note += f" {missing} configuration(s) without a paper value or an ok run not shown."
        add_note(fig, note)
        add_protocol_title(fig, protocol_lines(table))
    return fig


SPREAD = "min–max"
"""What the band around our mean curve shows: the range of our ok seeds at each size."""


def _seed_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (data, model, evaluation) of ok runs: ``stat`` (mean, min, max) and the
    accuracy in percent at each size."""
    ok = frame[frame[OK]].groupby(CONFIG_KEYS, observed=True)[SIZE_COLUMNS]
    parts = [getattr(ok, stat)().assign(stat=stat) for stat in ("mean", "min", "max")]
    out = pd.concat(parts).reset_index()
    out[SIZE_COLUMNS] = out[SIZE_COLUMNS] * 100.0
    return out


def _pick(table: pd.DataFrame, key: tuple[str, str, int]) -> pd.DataFrame:
    """The rows of ``table`` of one (data, model, evaluation)."""
    data, model, evaluation = key
    return table[
        (table["data"] == data) & (table["model"] == model) & (table["evaluation"] == evaluation)
    ]


def _draw_model_panel(
    ax: Axes, key: tuple[str, str, int], ours: pd.DataFrame, theirs: pd.DataFrame, n_ok: int
) -> None:
    """One model's panel of (data, model, evaluation) ``key``: training sizes shaded, our
    seeds' band and mean, the paper's mean (or "no paper curve"), the run counts."""
    _, model, evaluation = key
    sizes = np.array(ALL_SIZES)
    color = style.model_color(model)
    shade_training_sizes(ax, evaluation)
    if n_ok > 0:
        curve = ours.set_index("stat")[SIZE_COLUMNS]
        ax.fill_between(
            sizes,
            curve.loc["min"].to_numpy(float),
            curve.loc["max"].to_numpy(float),
            color=color,
            alpha=0.3,
            lw=0,
            zorder=1,
        )
        ax.plot(sizes, curve.loc["mean"].to_numpy(float), color=color, lw=1.2, zorder=3)
    else:
        mark_no_ok_runs(ax)
    note = f"n={n_ok}"
    if theirs.empty:
        ax.text(0.03, 0.04, "no paper curve", transform=ax.transAxes, fontsize=6, color="#777")
    else:
        paper = theirs.iloc[0]
        ax.plot(sizes, paper[SIZE_COLUMNS].to_numpy(float), color="#222222", lw=0.9, ls="--")
        if "runs" in theirs.columns and pd.notna(paper["runs"]):
            note += f" (paper {int(paper['runs'])})"
    ax.text(0.97, 0.04, note, ha="right", transform=ax.transAxes, fontsize=6, color="#555")
    ax.set_title(style.model_label(model), fontsize=8)
    ax.set_xlim(17, 64)
    ax.set_ylim(0, 100)


def _compare_legend(fig: Figure) -> None:
    handles = [
        Line2D([], [], color="#555555", lw=1.2, label="ours: mean over ok seeds"),
        Patch(color="#555555", alpha=0.3, lw=0, label=f"ours: {SPREAD} over the seeds"),
        Line2D([], [], color="#222222", lw=0.9, ls="--", label="paper: mean of its runs"),
        Patch(color="#e8e8e8", lw=0, label="training sizes"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))


def plot_compare_generalization(
    generalization: pd.DataFrame,
    paper_generalization: pd.DataFrame | None = None,
    *,
    datasets: Sequence[str] | None = None,
    evaluations: Sequence[int] | None = None,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    protocol: str | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Figure:
    """Small multiples of the scale generalisation, ours beside the paper's: per
    (dataset, evaluation) present in ``generalization`` a grid of one panel per model
    (shared x and y axes, at most ``max_columns`` per row), each with our mean accuracy per
    object size, the min–max band of our ok seeds, the paper's mean (dashed; "no paper
    curve" for a model the paper lacks) and the training sizes shaded.

    ``paper_generalization`` defaults to the shipped ``paper_generalization_mean.csv``
    (percent). ``protocol`` (:func:`scalecnn.protocol.protocol_note`) is written under the
    figure with the run counts.
    """
    frame = prepare_generalization(
        generalization, runs=runs, selection=selection, what="comparison (generalization)"
    )
    frame = subset(
        frame, what="comparison of generalization", data=datasets, evaluation=evaluations
    )
    paper = normalise(
        load_paper_generalization() if paper_generalization is None else paper_generalization,
        required=[*CONFIG_KEYS, *SIZE_COLUMNS],
        what="paper generalization",
    )
    d_rank = {d: i for i, d in enumerate(style.data_order(frame["data"]))}
    models = {
        (str(d), int(e)): style.model_order(part["model"])
        for (d, e), part in frame.groupby(["data", "evaluation"], observed=True)
    }
    configs = sorted(models, key=lambda c: (d_rank[c[0]], c[1]))
    counts = run_counts(frame).set_index(CONFIG_KEYS)["n_ok"]
    stats = _seed_stats(frame)
    columns = grid_columns(max(len(m) for m in models.values()), max_columns)
    heights = [grid_rows(len(models[c]), columns) for c in configs]

    with style.style_context():
        fig = Figure(
            figsize=(1.75 * columns + 0.6, 1.45 * sum(heights) + 0.45 * len(configs) + 0.9),
            layout="constrained",
        )
        subfigs = fig.subfigures(len(configs), 1, squeeze=False, height_ratios=heights)[:, 0]
        share: Axes | None = None
        for sub, (data, evaluation) in zip(subfigs, configs, strict=True):
            panels = model_panels(sub, models[(data, evaluation)], columns, share)
            share = share or next(iter(panels.values()))
            for model, ax in panels.items():
                key = (data, model, evaluation)
                n_ok = int(counts.get(key, 0))
                _draw_model_panel(ax, key, _pick(stats, key), _pick(paper, key), n_ok)
            sub.suptitle(f"{style.data_label(data)}, {style.eval_label(evaluation)}", fontsize=9)
            sub.supxlabel("Object size [px]", fontsize=8)
            sub.supylabel("Test accuracy [%]", fontsize=8)
        _compare_legend(fig)
        lines = protocol_lines(pd.DataFrame({"data": [""], "protocol": [protocol or ""]}))
        # above the figure is the legend: the protocol goes into the note under it
        add_note(fig, "\n".join([*lines, excluded_note(frame)]))
    return fig
