"""Table 2: mean training time per epoch (Mid2Rest, model × dataset).

The paper's table uses the training time of each run's last epoch
(``train_time_last_epoch`` in ``runs.csv``, seconds) averaged over the runs.
Runs with status != ok are left out of the means and counted in the table.
The LaTeX is formatted by hand (booktabs rules), so no jinja2 is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from scalecnn.atomic import write_csv, write_text
from scalecnn.plots import style
from scalecnn.plots.common import OK, prepare, run_counts, subset

TIME_COLUMN = "train_time_last_epoch"
TABLE2_EVALUATION = 2


def training_time_summary(
    runs: pd.DataFrame,
    *,
    evaluation: int = TABLE2_EVALUATION,
    column: str = TIME_COLUMN,
    selection: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long form of Table 2: ``data, model, n_ok, n_excluded, mean_s`` (mean of ``column``
    over the ok runs of ``evaluation``), in dataset and model order."""
    frame = prepare(runs, [column], what="Table 2 (runs)", selection=selection)
    frame = subset(frame, what="Table 2", evaluation=evaluation)
    counts = run_counts(frame, ["data", "model"])
    means = frame[frame[OK]].groupby(["data", "model"], observed=True)[column].mean()
    out = counts.merge(means.rename("mean_s").reset_index(), on=["data", "model"], how="left")
    d_rank = {d: i for i, d in enumerate(style.data_order(out["data"]))}
    m_rank = {m: i for i, m in enumerate(style.model_order(out["model"]))}
    out = out.assign(_d=out["data"].map(d_rank), _m=out["model"].map(m_rank))
    out = out.sort_values(["_d", "_m"]).drop(columns=["_d", "_m"]).reset_index(drop=True)
    return out[["data", "model", "n_ok", "n_excluded", "mean_s"]]


def table2(summary: pd.DataFrame) -> pd.DataFrame:
    """Wide Table 2 from :func:`training_time_summary`: rows models, columns datasets, seconds."""
    if summary.empty:
        raise ValueError("Table 2: the summary is empty")
    wide = summary.pivot(index="model", columns="data", values="mean_s")
    wide = wide.reindex(
        index=style.model_order(summary["model"]), columns=style.data_order(summary["data"])
    )
    wide.index.name = "model"
    wide.columns.name = None
    return wide


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in str(text))


def table2_latex(
    summary: pd.DataFrame,
    *,
    decimals: int = 2,
    evaluation: int = TABLE2_EVALUATION,
    caption: str | None = None,
    label: str = "tab:train-time",
) -> str:
    """Table 2 as LaTeX (``booktabs``) from :func:`training_time_summary`.

    A cell whose configuration had excluded runs carries a dagger; the last
    row gives per dataset the number of ok runs and of excluded runs, so none
    is silently dropped. Cells without an ok run show ``--``.
    """
    wide = table2(summary)
    counts = summary.set_index(["data", "model"])
    datasets = list(wide.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{"
        + _tex_escape(
            caption
            or (
                "Mean training time per epoch in seconds (time of each run's last epoch), "
                f"{style.eval_name(evaluation)}, mean over the runs with status ok."
            )
        )
        + "}",
        r"\label{" + label + "}",
        r"\begin{tabular}{l" + "r" * len(datasets) + "}",
        r"\toprule",
        "Model & " + " & ".join(_tex_escape(style.data_label(d)) for d in datasets) + r" \\",
        r"\midrule",
    ]
    any_dagger = False
    for model, row in wide.iterrows():
        cells = []
        for data in datasets:
            val = row[data]
            txt = "--" if not np.isfinite(val) else f"{val:.{decimals}f}"
            if (data, model) in counts.index and counts.loc[(data, model), "n_excluded"] > 0:
                txt += r"$^\dagger$"
                any_dagger = True
            cells.append(txt)
        lines.append(_tex_escape(style.model_label(model)) + " & " + " & ".join(cells) + r" \\")
    lines.append(r"\midrule")
    per_data = summary.groupby("data")[["n_ok", "n_excluded"]].sum()
    lines.append(
        r"Runs (ok / excluded) & "
        + " & ".join(
            f"{int(per_data.loc[d, 'n_ok'])} / {int(per_data.loc[d, 'n_excluded'])}"
            for d in datasets
        )
        + r" \\"
    )
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if any_dagger:
        lines.append(
            r"\par\smallskip{\footnotesize $^\dagger$ some runs excluded "
            r"(non-finite loss); mean over the remaining runs.}"
        )
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_table2(
    runs: pd.DataFrame,
    stem: str | os.PathLike,
    *,
    evaluation: int = TABLE2_EVALUATION,
    column: str = TIME_COLUMN,
    selection: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``{stem}.csv`` (long summary with counts) and ``{stem}.tex``; returns the paths."""
    summary = training_time_summary(runs, evaluation=evaluation, column=column, selection=selection)
    stem = str(stem)
    for suffix in (".csv", ".tex"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    csv_path, tex_path = Path(stem + ".csv"), Path(stem + ".tex")
    write_csv(csv_path, summary)
    write_text(tex_path, table2_latex(summary, evaluation=evaluation))
    return [csv_path, tex_path]
