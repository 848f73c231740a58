"""The reproduction record ``docs/reproduction.md``, generated from a finished study.

:func:`write_record` (rule ``record``) copies the verdict tables and figures of
every (data, evaluation) (:mod:`scalecnn.reproduction`) and the comparison of
scale generalisation with the paper into ``docs/reproduction/``, gathers the
provenance (:mod:`scalecnn.provenance`: git commit, date, CPU, threads, and how
long the study took from Snakemake's benchmark files) and writes the Markdown
of :func:`scalecnn.record_markdown.render_record`: the protocol
(:mod:`scalecnn.protocol`), the verdict tables, the Spearman correlation,
findings generated from the numbers, and — verbatim, clearly separated — the
hand-written notes file ``docs/reproduction_notes.md`` if there is one. Every
file is written atomically. The numbers are never edited by hand: rerun the
rule.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from scalecnn import atomic
from scalecnn.provenance import PathLike, cpu_model, git_commit, read_benchmarks
from scalecnn.record_markdown import RecordInputs, render_record
from scalecnn.study import PAPER_MODELS


def copy_file(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic.atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


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
) -> str:
    """Copy the verdict tables and figures of ``pairs`` ((data, evaluation), in the order of
    the file lists) and the generalisation comparison next to the record, and write the
    record ``md``; every file atomically. Returns the Markdown text."""
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
    bench = (
        # the models the paper lacks trained both rates (selection): all of their runs count
        read_benchmarks(bench_dir, reported, frozenset(r[1] for r in reported) - set(PAPER_MODELS))
        if bench_dir is not None and Path(bench_dir).is_dir()
        else None
    )
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
        )
    )
    atomic.write_text(md, text)
    return text
