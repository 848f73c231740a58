"""The Markdown text of the reproduction record ``docs/reproduction.md``.

:func:`render_record` turns a :class:`RecordInputs` — the verdict and per-run
tables of every (data, evaluation) (:mod:`scalecnn.reproduction`), the
protocol (:mod:`scalecnn.protocol`), the provenance
(:mod:`scalecnn.provenance`) and the hand-written notes — into the record:
where and when, the protocol beside the paper's, per (data, evaluation) the
verdict table, the Spearman correlation and the runs, the models the paper
lacks against the paper's published runs (:mod:`scalecnn.record_newer_models`),
the scale generalisation figure, findings generated from the numbers and,
clearly separated, the notes verbatim. The header's lines on the runs' code,
trainings and resumes are :mod:`scalecnn.record_header`'s. It only formats;
:mod:`scalecnn.record` reads and writes the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalecnn.newer_models import against_best_paper_model
from scalecnn.plots import style
from scalecnn.protocol import (
    PAPER_LEARNING_RATES,
    PAPER_PROTOCOL,
    PAPER_SELECTION_SEEDS,
    paper_seeds,
    protocol_note,
)
from scalecnn.provenance import time_per_family, wall_seconds
from scalecnn.record_format import fmt_diff, fmt_duration, markdown_table
from scalecnn.record_format import fmt_num as _num
from scalecnn.record_format import fmt_p as _p
from scalecnn.record_header import resumes_line, run_commits_line, trainings_line
from scalecnn.record_newer_models import (
    published_comparisons,
    published_finding,
    published_markdown,
)
from scalecnn.reproduction import (
    ALPHA,
    CONSISTENT,
    DIFFERS,
    INSUFFICIENT,
    NO_PAPER_VALUE,
    rank_correlation,
)

__all__ = [
    "RecordInputs",
    "findings",
    "fmt_duration",
    "markdown_table",
    "render_record",
    "resumes_line",
    "run_commits_line",
    "runs_markdown",
    "verdict_markdown",
]


def verdict_markdown(table: pd.DataFrame) -> str:
    """The verdict table (:func:`scalecnn.reproduction.verdict_table`) as Markdown."""
    header = [
        "model",
        "seeds",
        "ours mean [%]",
        "ours std",
        "paper mean [%]",
        "paper std",
        "paper runs",
        "ours − paper [pp]",
        "p (Welch)",
        "verdict",
    ]
    rows = []
    for r in table.itertuples(index=False):
        rows.append(
            [
                style.model_label(r.model),
                str(int(r.seeds)),
                _num(r.ours_mean),
                _num(r.ours_std),
                _num(r.paper_mean),
                _num(r.paper_std),
                "–" if pd.isna(r.paper_runs) else str(int(r.paper_runs)),
                fmt_diff(r.diff),
                _p(r.p_value),
                f"**{r.verdict}**" if r.verdict == DIFFERS else str(r.verdict),
            ]
        )
    return markdown_table(header, rows, [False] + [True] * 8 + [False])


def runs_markdown(runs: pd.DataFrame) -> str:
    """Per model: seeds, mean epochs, mean best epoch and mean training time per run."""
    rows = []
    for model in style.model_order(runs["model"]):
        r = runs[runs["model"] == model]
        excluded = int((r["status"] != "ok").sum())
        rows.append(
            [
                style.model_label(model),
                str(len(r)) + (f" ({excluded} not ok)" if excluded else ""),
                _num(pd.to_numeric(r["epochs"], errors="coerce").mean(), 1),
                _num(pd.to_numeric(r["best_epoch"], errors="coerce").mean(), 1),
                fmt_duration(float(r["train_seconds"].mean())),
            ]
        )
    header = ["model", "runs", "epochs (mean)", "best epoch (mean)", "training time per run"]
    return markdown_table(header, rows, [False, True, True, True, True])


def findings(table: pd.DataFrame, alpha: float = ALPHA) -> list[str]:
    """Bullet points generated from a verdict table: the models that differ (with their
    difference and p-value), those with too few seeds, the count of consistent ones."""
    out = []
    compared = table[table["verdict"].isin([CONSISTENT, DIFFERS])]
    n_cons = int((table["verdict"] == CONSISTENT).sum())
    out.append(
        f"{n_cons} of {len(compared)} model(s) tested are consistent with the paper "
        f"(two-sided Welch t-test, p ≥ {alpha:g})."
    )
    for r in table[table["verdict"] == DIFFERS].itertuples(index=False):
        direction = "above" if r.diff > 0 else "below"
        out.append(
            f"{style.model_label(r.model)} differs: ours {r.ours_mean:.2f} % vs the paper's "
            f"{r.paper_mean:.2f} % ({r.diff:+.2f} pp, {direction}; p = {_p(r.p_value)})."
        )
    if not (table["verdict"] == DIFFERS).any() and len(compared):
        out.append(f"No model differs from the paper at p < {alpha:g}.")
    few = table[table["verdict"] == INSUFFICIENT]
    if len(few):
        names = ", ".join(
            f"{style.model_label(m)} ({int(n)} ok seed(s))"
            for m, n in zip(few["model"], few["seeds"])
        )
        out.append(f"Too few ok seeds for the test: {names}.")
    for model in table.loc[table["verdict"] == NO_PAPER_VALUE, "model"]:
        out += _against_best(table, str(model), alpha)
    return out


def _against_best(table: pd.DataFrame, model: str, alpha: float) -> list[str]:
    """A finding for a model the paper lacks: is it better than the best paper model?"""
    c = against_best_paper_model(table, model)
    if c is None or not np.isfinite(c.mean):
        return []
    return [
        f"{style.model_label(model)} (not in the paper) against the best of the paper's "
        f"models here, {style.model_label(c.best)}: {c.mean:.2f} % vs {c.best_mean:.2f} % "
        f"({c.diff:+.2f} pp, Welch p = {_p(c.p_value)}): **{c.answer(alpha)}** "
        f"(at p < {alpha:g})."
    ]


@dataclass
class RecordInputs:
    """Everything :func:`render_record` puts into the record."""

    verdicts: dict[tuple[str, int], tuple[pd.DataFrame, pd.DataFrame]]
    """(data, evaluation) → (verdict table, per-run table)."""
    protocol: Mapping[str, Any]
    """:func:`scalecnn.protocol.protocol_values` of the config."""
    figures: dict[tuple[str, int], str] = field(default_factory=dict)
    """(data, evaluation) → the verdict figure's path relative to the record."""
    compare_figure: str | None = None
    tables: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    """(data, evaluation) → (verdict csv, per-run csv) paths relative to the record."""
    commit: str = "unknown"
    date: str = ""
    cpu: str = "unknown"
    cores: int | None = None
    threads: int | None = None
    configfile: str = ""
    benchmarks: pd.DataFrame | None = None
    notes: str | None = None
    notes_path: str = "docs/reproduction_notes.md"
    version: str = "unknown"
    """``scalecnn.__version__`` of the code that wrote the record."""
    selection: pd.DataFrame | None = None
    """The selection trainings at the rates not chosen (``model``, ``resumes``, ``commit``; from the
    benchmark files), None when unknown."""
    paper_summary: pd.DataFrame | None = None
    """``paper_runs_summary.csv``; None: the packaged one."""


def _protocol_markdown(protocol: Mapping[str, Any]) -> str:
    seeds = paper_seeds()
    paper_lr = protocol.get("paper_lr_models", [])
    if paper_lr == "all":
        lr = "the paper's chosen rate of each (data, model, evaluation) (`paper_lr_models: all`)"
    else:
        rates = ", ".join(f"{float(v):g}" for v in protocol.get("learning_rates", []))
        lr = (
            f"selected from {rates} by the median validation accuracy of "
            f"{protocol.get('selection_seeds')} seed(s)"
        )
        if paper_lr:
            lr += f"; the paper's rate for {', '.join(paper_lr)}"
    paper_lr_text = (
        f"selected from {', '.join(f'{v:g}' for v in PAPER_LEARNING_RATES)} by the median "
        f"validation accuracy of {PAPER_SELECTION_SEEDS} seeds"
    )
    reps = protocol["repetitions"]
    rows = [
        ["max epochs", str(protocol["max_epochs"]), str(PAPER_PROTOCOL["max_epochs"])],
        ["early-stopping patience", str(protocol["patience"]), str(PAPER_PROTOCOL["patience"])],
        ["batch size", str(protocol["batch_size"]), str(PAPER_PROTOCOL["batch_size"])],
        ["kernel size", str(protocol["kernel_size"]), str(PAPER_PROTOCOL["kernel_size"])],
        ["interpolation", str(protocol["interpolation"]), str(PAPER_PROTOCOL["interpolation"])],
        [
            "batch order",
            "reshuffled every epoch" if protocol["reshuffle"] else "one fixed order",
            "one fixed order",
        ],
        [
            "seeds per configuration",
            ", ".join(f"{d} {n} (1–{n})" for d, n in reps.items())
            + "".join(
                f"; {m} {n} (1–{n})" for m, n in protocol.get("model_repetitions", {}).items()
            ),
            ", ".join(f"{d} {seeds.get(d, '?')}" for d in reps),
        ],
        ["learning rate", lr, paper_lr_text],
    ]
    table = markdown_table(["setting", "this study", "paper"], rows, [False, False, False])
    return f"{table}\n\nProtocol: **{protocol_note(protocol)}**."


def render_record(inp: RecordInputs) -> str:
    """The Markdown text of ``docs/reproduction.md``."""
    out = [
        "# Reproduction record",
        "",
        "<!-- Generated by rule `record` (scalecnn.record). Do not edit by hand: rerun "
        f"`snakemake --cores N record --configfile {inp.configfile or 'CONFIG'}`. "
        f"Explanations of the findings go into {inp.notes_path}, which is included below "
        "verbatim. -->",
        "",
        "*This file is generated from the study's results; its numbers are never edited by "
        f"hand. Hand-written explanations are in the last section, from `{inp.notes_path}`.*",
        "",
        'Paper: Altstidl et al., "Just a Matter of Scale?" (arXiv 2211.10288), published '
        "results as packaged in `scalecnn/resources/paper_runs_summary.csv`.",
        "",
        "## Where and when",
        "",
    ]
    bench = inp.benchmarks if inp.benchmarks is not None else pd.DataFrame()
    per_family = time_per_family(bench) if not bench.empty else pd.DataFrame()
    out += [
        f"- configuration: `{inp.configfile or 'unknown'}`",
        f"- scalecnn version: `{inp.version}`",
        f"- git commit: `{inp.commit}` (the checkout that wrote this record)",
        run_commits_line(inp.verdicts, inp.selection),
        trainings_line(inp.verdicts, inp.selection),
        resumes_line(inp.verdicts, inp.selection),
        f"- record generated: {inp.date}",
        f"- CPU: {inp.cpu}; {inp.cores if inp.cores else '?'} core(s)",
        f"- torch threads per training: {inp.threads if inp.threads else '?'} "
        "(config `resources.train.threads`)",
        f"- wall time of the study: {fmt_duration(wall_seconds(bench))} "
        "(first benchmarked job's start to the last one's end, from the benchmark files; "
        "includes any pause between restarts)",
        "",
    ]
    if not per_family.empty:
        out += [
            "Time per rule family (sum of Snakemake's benchmark files under "
            "`results/benchmarks/`, column `s`):",
            "",
            markdown_table(
                ["rule family", "jobs", "total", "mean per job", "longest job"],
                [
                    [
                        str(r.family),
                        str(int(r.jobs)),
                        fmt_duration(r.total_s),
                        fmt_duration(r.mean_s),
                        fmt_duration(r.max_s),
                    ]
                    for r in per_family.itertuples(index=False)
                ],
                [False, True, True, True, True],
            ),
            "",
        ]
    out += ["## Protocol", "", _protocol_markdown(inp.protocol), ""]
    all_findings: list[str] = []
    for (data, evaluation), (table, runs) in sorted(inp.verdicts.items()):
        title = f"{style.data_label(data)}, {style.eval_label(evaluation)}"
        corr = rank_correlation(table)
        n_cons = int((table["verdict"] == CONSISTENT).sum())
        out += [f"## Results: {title}", ""]
        if (data, evaluation) in inp.figures:
            out += [f"![{title}: ours vs the paper]({inp.figures[(data, evaluation)]})", ""]
        out += [
            "Test accuracy in percent: mean and sample standard deviation over our ok seeds, "
            "the paper's mean, standard deviation and number of runs; p: two-sided Welch "
            f"t-test from these statistics; consistent: p ≥ {ALPHA:g}.",
            "",
            verdict_markdown(table),
            "",
            f"- consistent: {n_cons} of {len(table)} model(s)",
            f"- Spearman rank correlation of our means with the paper's over {corr.n} models: "
            f"ρ = {_num(corr.rho, 3)} (p = {_p(corr.p_value)})",
        ]
        if (data, evaluation) in inp.tables:
            csv, runs_csv = inp.tables[(data, evaluation)]
            out.append(f"- tables: [verdict]({csv}), [runs]({runs_csv})")
        out += ["", "Runs:", "", runs_markdown(runs), ""]
        published = published_comparisons(table, data, evaluation, inp.paper_summary)
        if published:
            out += [
                "Models the paper lacks against the paper's published runs of each paper "
                "model (its mean, standard deviation and number of runs; two-sided Welch "
                "t-test from these statistics and our ok seeds):",
                "",
                published_markdown(published),
                "",
            ]
        all_findings += [f"{title}: {f}" for f in findings(table)]
        all_findings += [f"{title}: {published_finding(m, c)}" for m, c in published.items()]
    if inp.compare_figure:
        out += [
            "## Scale generalisation",
            "",
            "One panel per model: our mean accuracy per object size (solid) with the range "
            "of our seeds (band: minimum to maximum), the paper's mean (dashed; none for the "
            "models the paper lacks); the training sizes shaded:",
            "",
            f"![Scale generalisation: ours vs the paper]({inp.compare_figure})",
            "",
        ]
    out += ["## Findings (generated from the numbers above)", ""]
    out += [f"- {f}" for f in all_findings] or ["- no results"]
    out += ["", "---", "", f"## Notes (hand-written, from `{inp.notes_path}`)", ""]
    out.append(inp.notes.rstrip() if inp.notes and inp.notes.strip() else "No notes yet.")
    return "\n".join(out) + "\n"
