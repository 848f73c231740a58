"""Table 2: mean training time per epoch (Mid2Rest, model × dataset).

The paper's table uses the training time of each run's last epoch
(``train_time_last_epoch`` in ``runs.csv``, seconds) averaged over the runs.
Runs with status != ok are left out of the means and counted in the table.
The LaTeX tabular is pandas' ``Styler.to_latex`` (booktabs rules; it needs jinja2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


RUNS_ROW = "Runs (ok / excluded)"
DAGGER = r"$^\dagger$"
DAGGER_NOTE = (
    r"\par\smallskip{\footnotesize $^\dagger$ some runs excluded "
    r"(non-finite loss); mean over the remaining runs.}"
)


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
    is silently dropped. Cells without an ok run show ``--``. Model and dataset
    names are escaped by pandas (``Styler.format_index(escape="latex")``);
    ``caption`` is LaTeX as given.
    """
    wide = table2(summary)
    counts = summary.set_index(["data", "model"])
    datasets = list(wide.columns)
    cells = pd.DataFrame(index=wide.index, columns=datasets, dtype=object)
    any_dagger = False
    for model, row in wide.iterrows():
        for data in datasets:
            val = row[data]
            txt = "--" if not np.isfinite(val) else f"{val:.{decimals}f}"
            if (data, model) in counts.index and counts.loc[(data, model), "n_excluded"] > 0:
                txt += DAGGER
                any_dagger = True
            cells.loc[model, data] = txt
    per_data = summary.groupby("data")[["n_ok", "n_excluded"]].sum()
    runs_row = [
        f"{int(per_data.loc[d, 'n_ok'])} / {int(per_data.loc[d, 'n_excluded'])}" for d in datasets
    ]
    cells.index = [style.model_label(m) for m in wide.index]
    cells.loc[RUNS_ROW] = runs_row
    cells.columns = pd.Index([style.data_label(d) for d in datasets], name="Model")
    tabular = (
        cells.style.format_index(escape="latex", axis=0)
        .format_index(escape="latex", axis=1)
        .to_latex(column_format="l" + "r" * len(datasets), hrules=True)
    )
    # booktabs: a rule between the models and the run counts
    tabular = tabular.replace(f"\n{RUNS_ROW} &", f"\n\\midrule\n{RUNS_ROW} &", 1)
    caption = caption or (
        "Mean training time per epoch in seconds (time of each run's last epoch), "
        f"{style.eval_name(evaluation)}, mean over the runs with status ok."
    )
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + caption + "}",
        r"\label{" + label + "}",
        tabular.rstrip("\n"),
        *([DAGGER_NOTE] if any_dagger else []),
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def latex_note(title: str, text: str) -> str:
    """A one-cell LaTeX table saying ``title``: ``text`` (both escaped by pandas), for a
    table that could not be built; preceded by a LaTeX comment naming ``title``."""
    note = pd.DataFrame({title: [text]})
    tabular = (
        note.style.hide(axis="index")
        .format(escape="latex")
        .format_index(escape="latex", axis=1)
        .to_latex(column_format="p{0.9\\linewidth}", hrules=True)
    )
    return f"% {title}\n{tabular}"
