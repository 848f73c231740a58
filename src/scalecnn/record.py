"""The reproduction record ``docs/reproduction.md``, generated from a finished study.

:func:`write_record` (rule ``record``) copies the verdict tables and figures of
every (data, evaluation) (:mod:`scalecnn.reproduction`) and the comparison of
scale generalisation with the paper into ``docs/reproduction/``, gathers the
provenance (:mod:`scalecnn.provenance`: git commit, package version, date, CPU,
threads, how long the study took and the selection trainings from Snakemake's
benchmark files, how often the trainings resumed from their ``metrics.json``)
and writes the Markdown of :func:`scalecnn.record_markdown.render_record`: the protocol
(:mod:`scalecnn.protocol`), the verdict tables, the Spearman correlation,
findings generated from the numbers, and — verbatim, clearly separated — the
hand-written notes file ``docs/reproduction_notes.md`` if there is one. Every
file is written atomically. The numbers are never edited by hand: rerun the
rule.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from scalecnn import __version__, atomic
from scalecnn.provenance import RUN_FAMILIES, PathLike, cpu_model, git_commit, read_benchmarks
from scalecnn.record_markdown import RecordInputs, render_record
from scalecnn.reproduction import run_resumes
from scalecnn.study import PAPER_MODELS, run_dir

RunKey = tuple[str, str, int, str, int]
"""(data, model, evaluation, lr as in the run folder, seed)."""
SELECTION_COLUMNS = ["data", "model", "evaluation", "lr", "seed", "resumes", "commit"]


def copy_file(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic.atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _training_key(path: str) -> RunKey | None:
    """The run of a ``train/{data}/{model}/eval{E}/lr{lr}/seed{S}.tsv`` benchmark file."""
    parts = Path(path).with_suffix("").parts
    if len(parts) != 6 or parts[0] != RUN_FAMILIES[0]:
        return None
    _, data, model, ev, lr, seed = parts
    evaluation, seed_number = int(ev.removeprefix("eval")), int(seed.removeprefix("seed"))
    return data, model, evaluation, lr.removeprefix("lr"), seed_number


def selection_runs(
    bench: pd.DataFrame, reported: set[RunKey], results_dir: PathLike | None = None
) -> pd.DataFrame:
    """The trainings among the benchmark files (:func:`scalecnn.provenance.read_benchmarks`
    of the reported runs) that are not reported: the selection trainings at the rates not
    chosen (the benchmark reader keeps those of the models the paper lacks only), with
    ``resumes`` and the code ``commit`` from their ``metrics.json`` under ``results_dir``
    (missing where there is none)."""
    rows = []
    for path in bench["path"]:
        key = _training_key(str(path))
        if key is None or key in reported:
            continue
        info = {}
        metrics = Path(results_dir, run_dir(*key), "metrics.json") if results_dir else None
        if metrics is not None and metrics.is_file():
            info = json.loads(metrics.read_text())
        values = [*key, info.get("resumes"), info.get("commit")]
        rows.append(dict(zip(SELECTION_COLUMNS, values, strict=True)))
    frame = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    return frame.assign(resumes=run_resumes(frame))


def write_record(
    *,
    md: PathLike,
    pairs: Sequence[tuple[str, int]],
    verdict_csvs: Sequence[PathLike],
    runs_csvs: Sequence[PathLike],
    pngs: Sequence[PathLike],
    out_csvs: Sequence[PathLike],
    out_runs_csvs: Sequence[PathLike],
    out_pngs: Sequence[PathLike],
    protocol: Mapping[str, Any],
    compare_png: PathLike | None = None,
    out_compare_png: PathLike | None = None,
    bench_dir: PathLike | None = None,
    notes: PathLike | None = None,
    repo: PathLike = ".",
    configfile: str = "",
    threads: int | None = None,
    results_dir: PathLike | None = None,
) -> str:
    """Copy the verdict tables and figures of ``pairs`` ((data, evaluation), in the order of
    the file lists) and the generalisation comparison next to the record, and write the
    record ``md``; every file atomically. Returns the Markdown text.

    ``results_dir`` holds the run folders (``runs/…``) of the selection trainings, whose
    ``metrics.json`` say how often they resumed; default: the folder above ``bench_dir``
    (``results/benchmarks`` → ``results``)."""
    lists = (verdict_csvs, runs_csvs, pngs, out_csvs, out_runs_csvs, out_pngs)
    if any(len(x) != len(pairs) for x in lists):
        raise ValueError(f"write_record: give one file per (data, evaluation) of {list(pairs)}")
    md = Path(md)
    verdicts, figures, tables = {}, {}, {}
    reported = set()
    for i, (data, evaluation) in enumerate(pairs):
        key = (str(data), int(evaluation))
        table, runs = pd.read_csv(verdict_csvs[i]), pd.read_csv(runs_csvs[i])
        verdicts[key] = (table, runs)
        copy_file(verdict_csvs[i], out_csvs[i])
        copy_file(runs_csvs[i], out_runs_csvs[i])
        copy_file(pngs[i], out_pngs[i])
        figures[key] = os.path.relpath(out_pngs[i], md.parent)
        tables[key] = (
            os.path.relpath(out_csvs[i], md.parent),
            os.path.relpath(out_runs_csvs[i], md.parent),
        )
        reported |= {
            (key[0], str(r.model), key[1], f"{float(r.lr):g}", int(r.seed))
            for r in runs.itertuples()
        }
    compare = None
    if compare_png and out_compare_png:
        copy_file(compare_png, out_compare_png)
        compare = os.path.relpath(out_compare_png, md.parent)
    bench, selection = None, None
    if bench_dir is not None and Path(bench_dir).is_dir():
        # the models the paper lacks trained every rate (selection): all of their runs count
        new_models = frozenset(r[1] for r in reported) - set(PAPER_MODELS)
        bench = read_benchmarks(bench_dir, reported, new_models)
        root = Path(bench_dir).parent if results_dir is None else results_dir
        selection = selection_runs(bench, reported, root)
    notes_text = Path(notes).read_text() if notes and Path(notes).is_file() else None
    text = render_record(
        RecordInputs(
            verdicts=verdicts,
            protocol=protocol,
            figures=figures,
            compare_figure=compare,
            tables=tables,
            commit=git_commit(repo),
            date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            cpu=cpu_model(),
            cores=os.cpu_count(),
            threads=threads,
            configfile=configfile,
            benchmarks=bench,
            notes=notes_text,
            notes_path=str(notes) if notes else "docs/reproduction_notes.md",
            version=__version__,
            selection=selection,
        )
    )
    atomic.write_text(md, text)
    return text
