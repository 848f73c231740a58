"""Helpers shared by the figure modules: input normalisation, run filtering, counts, saving.

Conventions every plotting function follows:

* Inputs are the tables of ``docs/formats.md``. The evaluation column may be
  called ``evaluation`` (``runs.csv``) or ``eval`` (generalisation and
  equivariance tables); MLflow export names (``params.model``,
  ``metrics.test_acc``, ...) are accepted where the plain name is missing.
* A run counts as *ok* when its ``status`` is ``'ok'`` and the values a figure
  uses are finite. Other runs are excluded from means, medians and points but
  counted, and the counts are written on the figure or into the table.
  Tables without a ``status`` column (generalisation, equivariance) take it
  from ``runs=`` (matched on data, model, evaluation, lr, seed) when given,
  else from the finiteness of their own values.
* ``selection=`` (``selection.csv``) keeps only each configuration's chosen
  learning rate. Without it, a configuration with several learning rates is
  kept whole, with a warning.
* A subset with no rows raises ``ValueError`` naming the missing subset.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scalecnn.atomic import save_figure
from scalecnn.plots import style
from scalecnn.study import ALL_SIZES, TRAIN_SIZE_RANGES, format_lr

CONFIG_KEYS = ["data", "model", "evaluation"]
RUN_KEYS = ["data", "model", "evaluation", "lr", "seed"]
SIZE_COLUMNS = [f"s{s}" for s in ALL_SIZES]
OK = "_ok"

_MLFLOW_PREFIXES = ("params.", "metrics.", "tags.", "attributes.")


# --------------------------------------------------------------------------- input
def normalise(
    frame: pd.DataFrame, required: Sequence[str] = (), what: str = "table"
) -> pd.DataFrame:
    """Copy of ``frame`` with canonical column names and types.

    ``eval`` becomes ``evaluation``; MLflow names fill in missing plain names;
    ``evaluation`` and ``seed`` become integers, ``lr`` a float, ``data`` and
    ``model`` strings. Missing ``required`` columns raise ``ValueError``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    out = frame.copy()
    for col in list(out.columns):
        name = str(col)
        for prefix in _MLFLOW_PREFIXES:
            if name.startswith(prefix):
                plain = name[len(prefix) :]
                if plain not in out.columns:
                    out[plain] = out[col]
    if "evaluation" not in out.columns and "eval" in out.columns:
        out = out.rename(columns={"eval": "evaluation"})
    missing = [c for c in required if c not in out.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {missing}; present: {[str(c) for c in frame.columns]}"
        )
    if out.empty:
        return out
    for col in ("data", "model", "status"):
        if col in out.columns:
            out[col] = out[col].astype(str)
    for col in ("evaluation", "seed"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    if "lr" in out.columns:
        out["lr"] = pd.to_numeric(out["lr"], errors="coerce").astype(float)
    return out


def _lr_key(lr: pd.Series) -> pd.Series:
    return lr.map(lambda v: format_lr(v) if pd.notna(v) else "nan")


def attach_status(
    frame: pd.DataFrame,
    values: Sequence[str],
    runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add ``status`` (if missing) and the boolean column ``_ok``.

    ``status`` comes from ``frame`` itself, else from ``runs`` (matched on
    data, model, evaluation, lr, seed), else from whether ``values`` are all
    finite. ``_ok`` is ``status == 'ok'`` and all ``values`` finite.
    """
    out = frame.copy()
    vals = out[list(values)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(vals).all(axis=1) if len(values) else np.ones(len(out), bool)
    if "status" not in out.columns and runs is not None and len(out):
        keys = [k for k in RUN_KEYS if k in out.columns]
        r = normalise(runs, required=[*keys, "status"], what="runs")
        left = out[keys].copy()
        right = r[[*keys, "status"]].copy()
        if "lr" in keys:
            left["lr"] = _lr_key(left["lr"])
            right["lr"] = _lr_key(right["lr"])
        right = right.drop_duplicates(subset=keys, keep="last")
        merged = left.reset_index(drop=True).merge(right, on=keys, how="left")
        out["status"] = merged["status"].to_numpy()
    if "status" not in out.columns:
        out["status"] = np.where(finite, "ok", "nonfinite")
    else:
        status = out["status"].astype(object)
        unknown = status.isna().to_numpy()
        status[unknown] = np.where(finite[unknown], "ok", "nonfinite")
        out["status"] = status.astype(str)
    out[OK] = (out["status"].to_numpy() == "ok") & finite
    return out


def select_lr(frame: pd.DataFrame, selection: pd.DataFrame | None = None) -> pd.DataFrame:
    """Keep each configuration's chosen learning rate (from ``selection``).

    Configurations absent from ``selection`` are kept whole. Without
    ``selection``, a configuration with several learning rates is kept whole
    and a ``UserWarning`` names it.
    """
    if frame.empty or "lr" not in frame.columns:
        return frame
    if selection is not None:
        sel = normalise(selection, required=[*CONFIG_KEYS, "chosen_lr"], what="selection")
        sel = sel[[*CONFIG_KEYS, "chosen_lr"]].drop_duplicates(subset=CONFIG_KEYS, keep="last")
        merged = frame.reset_index(drop=True).merge(sel, on=CONFIG_KEYS, how="left")
        chosen = pd.to_numeric(merged["chosen_lr"], errors="coerce").to_numpy(dtype=float)
        lr = merged["lr"].to_numpy(dtype=float)
        keep = np.isnan(chosen) | np.isclose(lr, chosen, rtol=1e-6, atol=0.0)
        frame = frame.reset_index(drop=True).loc[keep].reset_index(drop=True)
    n_lr = frame.groupby(CONFIG_KEYS, observed=True)["lr"].nunique()
    mixed = n_lr[n_lr > 1]
    if len(mixed):
        names = ", ".join("/".join(str(x) for x in idx) for idx in mixed.index[:5])
        more = f" and {len(mixed) - 5} more" if len(mixed) > 5 else ""
        warnings.warn(
            f"several learning rates pooled for {names}{more}; pass selection= "
            "(selection.csv) to keep only the chosen rate",
            UserWarning,
            stacklevel=3,
        )
    return frame


def prepare(
    frame: pd.DataFrame,
    values: Sequence[str],
    *,
    what: str,
    runs: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    required: Sequence[str] = ("data", "model", "evaluation"),
) -> pd.DataFrame:
    """:func:`normalise`, :func:`select_lr` and :func:`attach_status` in one call."""
    out = normalise(frame, required=[*required, *values], what=what)
    if out.empty:
        return out.assign(status=pd.Series(dtype=str), **{OK: pd.Series(dtype=bool)})
    out = select_lr(out, selection)
    return attach_status(out, values, runs=runs)


def _describe(**criteria: object) -> str:
    parts = []
    for key, val in criteria.items():
        if val is None:
            continue
        if isinstance(val, (list, tuple, set)):
            parts.append(f"{key} in {sorted(val, key=str)}")
        else:
            parts.append(f"{key}={val!r}")
    return ", ".join(parts) if parts else "(any)"


def subset(
    frame: pd.DataFrame,
    *,
    what: str,
    data: str | Iterable[str] | None = None,
    model: str | Iterable[str] | None = None,
    evaluation: int | Iterable[int] | None = None,
    require_ok: bool = True,
) -> pd.DataFrame:
    """Rows of ``frame`` matching the criteria; ``ValueError`` naming the subset if none.

    With ``require_ok`` the subset must also contain at least one ok run.
    """
    crit: dict[str, object] = {}
    mask = np.ones(len(frame), dtype=bool)
    for col, val in (("data", data), ("model", model), ("evaluation", evaluation)):
        if val is None:
            continue
        vals = [val] if isinstance(val, (str, int, np.integer)) else list(val)
        if col == "evaluation":
            vals = [int(v) for v in vals]
        crit[col] = vals[0] if len(vals) == 1 else vals
        if col in frame.columns:
            mask &= frame[col].isin(vals).to_numpy(dtype=bool)
        else:
            mask &= False
    out = frame.loc[mask]
    if out.empty:
        avail = []
        for col in ("data", "model", "evaluation"):
            if col in frame.columns and len(frame):
                avail.append(f"{col} {sorted({str(v) for v in frame[col].dropna()})}")
        have = "; available: " + ", ".join(avail) if avail else " (input is empty)"
        raise ValueError(f"{what}: no rows for {_describe(**crit)}{have}")
    if require_ok and not out[OK].any():
        raise ValueError(
            f"{what}: all {len(out)} run(s) for {_describe(**crit)} are excluded "
            "(status != 'ok' or non-finite values); nothing to draw"
        )
    return out


# --------------------------------------------------------------------------- counts
def run_counts(frame: pd.DataFrame, keys: Sequence[str] = CONFIG_KEYS) -> pd.DataFrame:
    """Per group of ``keys``: ``n_ok`` and ``n_excluded`` runs."""
    keys = list(keys)
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "n_ok", "n_excluded"])
    g = frame.assign(_exc=~frame[OK]).groupby(keys, observed=True, sort=False)
    out = pd.DataFrame({"n_ok": g[OK].sum(), "n_excluded": g["_exc"].sum()}).reset_index()
    out["n_ok"] = out["n_ok"].astype(int)
    out["n_excluded"] = out["n_excluded"].astype(int)
    return out


def excluded_note(frame: pd.DataFrame, max_items: int = 6) -> str:
    """One line saying how many runs a figure uses and which ones it excluded."""
    n_ok = int(frame[OK].sum())
    n_exc = int((~frame[OK]).sum())
    text = f"{n_ok} run(s) with status ok"
    if n_exc == 0:
        return text + "; none excluded."
    counts = run_counts(frame)
    counts = counts[counts["n_excluded"] > 0]
    counts = counts.assign(
        _m=counts["model"].map({m: i for i, m in enumerate(style.model_order(counts["model"]))}),
        _d=counts["data"].map({d: i for i, d in enumerate(style.data_order(counts["data"]))}),
    ).sort_values(["_d", "_m", "evaluation"])
    items = [
        f"{r.data}/{r.model}/{style.eval_name(r.evaluation)}: {r.n_excluded}"
        for r in counts.itertuples()
    ]
    shown = "; ".join(items[:max_items])
    if len(items) > max_items:
        shown += f"; … ({len(items) - max_items} more)"
    return f"{text}; {n_exc} excluded (status != ok or non-finite): {shown}."


def mark_no_ok_runs(ax: Axes) -> None:
    """Write "no ok runs" in the middle of an empty panel."""
    ax.text(
        0.5, 0.5, "no ok runs", ha="center", va="center", transform=ax.transAxes, color="#777777"
    )


def label_size_grid_panel(
    ax: Axes, row: int, col: int, nrows: int, data: str, evaluation: int
) -> None:
    """Titles, labels and limits of one panel of a dataset × evaluation grid over object size."""
    if row == 0:
        ax.set_title(style.eval_label(evaluation))
    if col == 0:
        ax.set_ylabel(f"{style.data_label(data)}\ntest acc. [%]")
    if row == nrows - 1:
        ax.set_xlabel("Object size [px]")
    ax.set_xlim(17, 64)
    ax.set_ylim(0, 100)


def shade_training_sizes(ax: Axes, evaluation: int) -> None:
    """Shade the training object sizes of ``evaluation`` on an axis over object size."""
    lo, hi = TRAIN_SIZE_RANGES.get(int(evaluation), (None, None))
    if lo is not None:
        ax.axvspan(lo - 0.5, hi + 0.5, color="#e8e8e8", zorder=0, lw=0)


def draw_size_grid(
    fig: Figure,
    rows: Sequence[str],
    cols: Sequence[int],
    draw_panel: Callable[[Axes, str, int], None],
) -> None:
    """Fill ``fig`` with a dataset (``rows``) × evaluation (``cols``) grid over object size.

    Each panel (shared x and y axes) gets the training sizes shaded
    (:func:`shade_training_sizes`), then ``draw_panel(ax, data, evaluation)``,
    then its titles, labels and limits (:func:`label_size_grid_panel`).
    """
    axes = fig.subplots(len(rows), len(cols), sharex=True, sharey=True, squeeze=False)
    for ri, data in enumerate(rows):
        for ci, evaluation in enumerate(cols):
            ax = axes[ri, ci]
            shade_training_sizes(ax, evaluation)
            draw_panel(ax, data, evaluation)
            label_size_grid_panel(ax, ri, ci, len(rows), data, evaluation)


def note_run_counts(
    ax: Axes,
    counts: pd.DataFrame,
    data: str,
    evaluation: int,
    *,
    missing: str | None = None,
) -> None:
    """Write a panel's run counts small in its lower right corner.

    ``counts`` is :func:`run_counts` over ``["data", "evaluation"]``, indexed by
    both. The note is ``n=<ok>``, plus ``, <excluded> excl.`` if any run is
    excluded; a panel without a row in ``counts`` gets ``missing`` (nothing if None).
    """
    if (data, evaluation) in counts.index:
        n_ok, n_exc = counts.loc[(data, evaluation), ["n_ok", "n_excluded"]]
        note = f"n={int(n_ok)}" + (f", {int(n_exc)} excl." if n_exc else "")
    elif missing is not None:
        note = missing
    else:
        return
    ax.text(
        0.99,
        0.02,
        note,
        ha="right",
        va="bottom",
        fontsize=6,
        transform=ax.transAxes,
        color="#555555",
    )


def add_note(fig: Figure, text: str) -> None:
    """Write ``text`` under the figure (kept by ``bbox_inches='tight'``)."""
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=6, color="#555555", wrap=True)


# --------------------------------------------------------------------------- saving
_KNOWN_SUFFIXES = (".pdf", ".png", ".svg")


def save_figure_formats(
    fig: Figure,
    stem_or_paths: str | os.PathLike | Iterable[str | os.PathLike],
    formats: Sequence[str] = ("pdf", "png"),
    dpi: int = 200,
) -> list[Path]:
    """Save ``fig`` atomically in several formats; returns the written paths.

    ``stem_or_paths`` is either one stem (``results/figures/fig4`` →
    ``fig4.pdf`` and ``fig4.png``; a trailing ``.pdf``/``.png``/``.svg`` is
    stripped first; other dots are kept, so ``fig_lr0.01`` is a stem) or an
    iterable of full paths, each written in the format of its suffix.
    """
    if isinstance(stem_or_paths, (str, os.PathLike)):
        stem = str(stem_or_paths)
        for suffix in _KNOWN_SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        paths = [Path(f"{stem}.{fmt.lstrip('.')}") for fmt in formats]
    else:
        paths = [Path(p) for p in stem_or_paths]
    if not paths:
        raise ValueError("save_figure_formats: no output path given")
    for path in paths:
        kwargs: dict[str, object] = {"dpi": dpi, "bbox_inches": "tight"}
        if path.suffix.lower() == ".pdf":
            kwargs["metadata"] = {"CreationDate": None}
        save_figure(fig, path, **kwargs)
    return paths
