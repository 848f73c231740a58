"""Glue between the workflow and the figure functions: frames from per-run files.

The workflow gives every figure and table only the per-run files of the
configurations it shows (``metrics.json``, ``generalization.csv``,
``equivariance.npz`` and the selection records
``results/selection/{data}/{model}/eval{evaluation}.json``), not the global
tables, so that asking for one artefact builds only what it needs. The
functions here build the frames in memory with :mod:`scalecnn.aggregate`, call
the plotting function of the artefact and, when that function finds nothing
to draw (every run excluded, a subset without rows), return a placeholder
figure that says why instead of failing the workflow; the reason is logged.

==========================  ==========================================================
artefact (``kind``)         function
==========================  ==========================================================
``fig4``                    :func:`~scalecnn.plots.accuracy.plot_accuracy_summary`
``suppl_fig1``              :func:`~scalecnn.plots.accuracy.plot_accuracy_boxes`
``fig5``                    :func:`~scalecnn.plots.generalization.plot_generalization`
``suppl_fig2``              :func:`~scalecnn.plots.generalization.plot_generalization_grid`
``fig6``                    :func:`~scalecnn.plots.equivariance.plot_equivariance`
``suppl_fig3``              :func:`~scalecnn.plots.equivariance.plot_equivariance_grid`
``compare_generalization``  :func:`~scalecnn.plots.compare.plot_compare_generalization`
``fig7``                    :func:`~scalecnn.plots.indices.plot_slice_indices`
``suppl_fig4``              :func:`~scalecnn.plots.indices.plot_pixel_indices`
==========================  ==========================================================
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scalecnn import aggregate
from scalecnn.atomic import write_csv, write_text
from scalecnn.plots import style
from scalecnn.plots.accuracy import plot_accuracy_boxes, plot_accuracy_summary
from scalecnn.plots.common import add_note
from scalecnn.plots.compare import (
    compare_markdown,
    compare_table,
    plot_compare_generalization,
    plot_compare_scatter,
)
from scalecnn.plots.equivariance import plot_equivariance, plot_equivariance_grid
from scalecnn.plots.generalization import plot_generalization, plot_generalization_grid
from scalecnn.plots.indices import plot_pixel_indices, plot_slice_indices
from scalecnn.plots.tables import latex_note, table2_latex, training_time_summary

log = logging.getLogger("scalecnn.plots.inputs")

PathLike = str | os.PathLike

TITLES: dict[str, str] = {
    "fig4": "Fig. 4: test accuracy per model",
    "suppl_fig1": "Suppl. Fig. 1: test accuracy box plots",
    "fig5": "Fig. 5: scale generalisation",
    "suppl_fig2": "Suppl. Fig. 2: scale generalisation, all datasets",
    "fig6": "Fig. 6: equivariance error vs test accuracy",
    "suppl_fig3": "Suppl. Fig. 3: equivariance error vs test accuracy, all datasets",
    "fig7": "Fig. 7: kernel sizes chosen by slice pooling",
    "suppl_fig4": "Suppl. Fig. 4: kernel sizes chosen by pixel pooling",
    "table2": "Table 2: training time per epoch",
    "compare": "Comparison with the paper",
    "compare_scatter": "Comparison with the paper: mean test accuracy",
    "compare_generalization": "Comparison with the paper: scale generalisation",
}


# --------------------------------------------------------------------------- frames
@dataclass
class RunFrames:
    """The tables of ``docs/formats.md`` for one artefact's runs, built in memory."""

    runs: pd.DataFrame
    selection: pd.DataFrame | None = None
    generalization: pd.DataFrame | None = None
    equivariance: pd.DataFrame | None = None


def _paths(files: Iterable[PathLike] | None) -> list[str]:
    return [str(f) for f in (files or [])]


def load_frames(
    metrics: Iterable[PathLike],
    *,
    selection: Iterable[PathLike] = (),
    generalization: Iterable[PathLike] = (),
    equivariance: Iterable[PathLike] = (),
) -> RunFrames:
    """Frames from per-run files.

    ``metrics``: ``metrics.json`` of the runs (→ ``runs``). ``selection``:
    selection records (``.json``; other files are ignored) → ``selection``.
    ``generalization``: per-run ``generalization.csv`` → ``generalization``.
    ``equivariance``: per-run ``equivariance.npz``, in the order of ``metrics``
    (one per run) → ``equivariance``. Frames whose files are not given are
    ``None``.
    """
    metrics = _paths(metrics)
    if not metrics:
        raise ValueError("load_frames: no metrics.json given")
    records = [f for f in _paths(selection) if f.endswith(".json")]
    gen_files = _paths(generalization)
    eq_files = _paths(equivariance)
    if eq_files and len(eq_files) != len(metrics):
        raise ValueError(
            f"load_frames: {len(eq_files)} equivariance.npz for {len(metrics)} metrics.json; "
            "give one per run, in the same order"
        )
    frames = RunFrames(
        runs=aggregate.runs_table(metrics),
        selection=aggregate.selection_table(records) if records else None,
        generalization=(
            aggregate.concat_csvs(gen_files, ["data", "model", "eval", "lr", "seed"])
            if gen_files
            else None
        ),
        equivariance=(
            aggregate.equivariance_table(list(zip(metrics, eq_files, strict=True)))
            if eq_files
            else None
        ),
    )
    log.info(
        "frames: %d run(s), %d selection record(s), %d generalisation row(s), "
        "%d equivariance row(s)",
        len(frames.runs),
        len(records),
        0 if frames.generalization is None else len(frames.generalization),
        0 if frames.equivariance is None else len(frames.equivariance),
    )
    return frames


# --------------------------------------------------------------------------- placeholders
def placeholder_figure(title: str, reason: str) -> Figure:
    """A small figure that states that ``title`` could not be drawn, and why."""
    with style.style_context():
        fig = Figure(figsize=(6.0, 2.0))
        fig.text(0.5, 0.78, title, ha="center", va="center", fontsize=10, weight="bold")
        fig.text(
            0.5,
            0.62,
            "not drawn: nothing to show with the runs of this configuration",
            ha="center",
            va="center",
            fontsize=8,
            color="#555555",
        )
        fig.text(
            0.5,
            0.32,
            "\n".join(textwrap.wrap(str(reason), 95)),
            ha="center",
            va="center",
            fontsize=7,
            color="#aa0000",
        )
    return fig


def figure_or_placeholder(
    title: str, draw: Callable[..., Figure], *args: object, **kwargs: object
) -> Figure:
    """``draw(*args, **kwargs)``, or a :func:`placeholder_figure` stating the ``ValueError``
    the plotting function raised (e.g. every run excluded as non-finite); logged as a warning."""
    try:
        return draw(*args, **kwargs)
    except ValueError as exc:
        log.warning("%s: not drawn, writing a placeholder figure: %s", title, exc)
        return placeholder_figure(title, str(exc))


# --------------------------------------------------------------------------- figures
def _need(frame: pd.DataFrame | None, kind: str, files: str) -> pd.DataFrame:
    if frame is None:
        raise TypeError(f"{kind}: needs the {files} files of its runs")
    return frame


def _draw(
    kind: str, frames: RunFrames, data: str | None
) -> tuple[Callable[..., Figure], tuple, dict]:
    """The plotting function of ``kind``, its positional and its keyword arguments."""
    common = {"selection": frames.selection}
    if kind == "fig4":
        return plot_accuracy_summary, (frames.runs,), common
    if kind == "suppl_fig1":
        return plot_accuracy_boxes, (frames.runs,), common
    if kind in ("fig5", "suppl_fig2", "compare_generalization"):
        gen = _need(frames.generalization, kind, "generalization.csv")
        kwargs = {**common, "runs": frames.runs}
        if kind == "fig5":
            draw = plot_generalization
            kwargs["data"] = data
        else:
            draw = plot_generalization_grid if kind == "suppl_fig2" else plot_compare_generalization
        return draw, (gen,), kwargs
    if kind in ("fig6", "suppl_fig3"):
        eq = _need(frames.equivariance, kind, "equivariance.npz")
        kwargs = {**common, "runs": frames.runs}
        if kind == "fig6":
            kwargs["data"] = data
            return plot_equivariance, (eq,), kwargs
        kwargs["datasets"] = None  # every dataset whose equivariance the config measures
        return plot_equivariance_grid, (eq,), kwargs
    raise ValueError(
        f"unknown figure kind {kind!r}; expected one of fig4, suppl_fig1, fig5, suppl_fig2, "
        "fig6, suppl_fig3, compare_generalization"
    )


def figure_from_files(
    kind: str,
    *,
    metrics: Iterable[PathLike],
    selection: Iterable[PathLike] = (),
    generalization: Iterable[PathLike] = (),
    equivariance: Iterable[PathLike] = (),
    data: str | None = None,
    protocol: str | None = None,
) -> Figure:
    """The figure ``kind`` (see the module docstring) from the per-run files of its runs.

    ``data`` names the dataset of Fig. 5 and Fig. 6. ``protocol``
    (:func:`scalecnn.protocol.protocol_note`) is written above the comparison with the
    paper (``compare_generalization``; ignored by the other kinds). The frames are built with
    :func:`load_frames`; a ``ValueError`` of the plotting function gives a
    placeholder figure (:func:`figure_or_placeholder`).
    """
    if kind in ("fig5", "fig6") and not data:
        raise ValueError(f"{kind}: give the dataset (data=...)")
    frames = load_frames(
        metrics, selection=selection, generalization=generalization, equivariance=equivariance
    )
    draw, args, kwargs = _draw(kind, frames, data)
    if kind == "compare_generalization" and protocol:
        kwargs["protocol"] = protocol
    title = TITLES.get(kind, kind) + (f" ({data})" if data else "")
    return figure_or_placeholder(title, draw, *args, **kwargs)


def load_indices(path: PathLike) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of a ``best.npz`` (rule ``best_run_indices``) and the run they come from."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    run = str(arrays.pop("run")) if "run" in arrays else "unknown run"
    return arrays, run


def indices_figure(kind: str, path: PathLike, **options: object) -> Figure:
    """Fig. 7 (``kind='fig7'``, slice pooling) or Suppl. Fig. 4 (``'suppl_fig4'``, pixel
    pooling) from the best run's ``best.npz``; the run is named under the figure.
    ``options`` go to the plotting function (``stage``, ``label``, ...)."""
    draws: Mapping[str, Callable[..., Figure]] = {
        "fig7": plot_slice_indices,
        "suppl_fig4": plot_pixel_indices,
    }
    if kind not in draws:
        raise ValueError(f"unknown indices figure {kind!r}; expected fig7 or suppl_fig4")
    arrays, run = load_indices(path)
    log.info("%s: indices of %s (%s)", kind, run, ", ".join(sorted(arrays)))
    fig = figure_or_placeholder(TITLES[kind], draws[kind], arrays, **options)
    add_note(fig, f"Best run by test accuracy: {run}")
    return fig


def compare_scatter_from_csv(path: PathLike) -> Figure:
    """The comparison scatter from ``compare_paper.csv`` (:func:`write_compare_files`)."""
    table = pd.read_csv(path)
    return figure_or_placeholder(TITLES["compare_scatter"], plot_compare_scatter, table)


# --------------------------------------------------------------------------- tables
def _placeholder_csv(path: PathLike, title: str, reason: str) -> None:
    write_csv(path, pd.DataFrame({"note": [f"{title} not available: {reason}"]}))


def write_table2_files(
    metrics: Iterable[PathLike],
    csv: PathLike,
    tex: PathLike,
    *,
    selection: Iterable[PathLike] = (),
) -> pd.DataFrame | None:
    """Table 2 (:func:`~scalecnn.plots.tables.training_time_summary`) as ``csv`` (long form
    with run counts) and ``tex``. If there is nothing to tabulate (every run excluded),
    both files state why, and ``None`` is returned."""
    frames = load_frames(metrics, selection=selection)
    try:
        summary = training_time_summary(frames.runs, selection=frames.selection)
        latex = table2_latex(summary)
    except ValueError as exc:
        log.warning("Table 2: not tabulated, writing placeholders: %s", exc)
        _placeholder_csv(csv, "Table 2", str(exc))
        write_text(tex, latex_note("Table 2 not available", str(exc)))
        return None
    write_csv(csv, summary)
    write_text(tex, latex)
    return summary


def write_compare_files(
    metrics: Iterable[PathLike],
    csv: PathLike,
    md: PathLike,
    *,
    selection: Iterable[PathLike] = (),
    protocol: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Our mean test accuracy beside the paper's (:func:`~scalecnn.plots.compare.compare_table`)
    as ``csv`` and ``md``; ``protocol`` (:func:`scalecnn.protocol.protocol_values`) fills the
    column saying how the runs' protocol differs from the paper's."""
    frames = load_frames(metrics, selection=selection)
    table = compare_table(frames.runs, selection=frames.selection, protocol=protocol)
    write_csv(csv, table)
    write_text(md, compare_markdown(table))
    n_paper = int(table["paper_mean"].notna().sum())
    log.info("comparison: %d configuration(s), %d with a paper value", len(table), n_paper)
    return table
