"""Where, when and how long a study ran: the provenance of the reproduction record.

The environment (:func:`git_commit`, :func:`cpu_model`) and the study's run
times, read from Snakemake's benchmark files (:func:`read_benchmarks`: one
``.tsv`` per job under ``results/benchmarks/``, column ``s`` in seconds) and
summed per rule family (:func:`time_per_family`) or spanned end to end
(:func:`wall_seconds`).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scalecnn.study import PAPER_MODELS

PathLike = str | os.PathLike
RUN_FAMILIES = ("train", "generalization", "equivariance")
NOT_IN_PAPER = "not in the paper"
"""Benchmark families with one file per run: ``{family}/{data}/{model}/eval{E}/lr{lr}/seed{S}``."""


# --------------------------------------------------------------------------- environment
def git_commit(
    repo: PathLike, ignore: Sequence[str] = ("docs/reproduction.md", "docs/reproduction")
) -> str:
    """``git rev-parse HEAD`` of the repository holding ``repo``, with ``-dirty`` when tracked
    files differ from it (paths in ``ignore``, relative to the repository's top, e.g. the
    record's own outputs, do not count); ``"unknown"`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", ":/"]
            + [f":(top,exclude){p}" for p in ignore],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if status else "")


def code_commit() -> str:
    """:func:`git_commit` of the checkout this ``scalecnn`` package was imported from
    (``"unknown"`` for an installed copy outside git): the code a run used."""
    return git_commit(Path(__file__).resolve().parent, ignore=())


def cpu_model(cpuinfo: PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name (from ``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


# --------------------------------------------------------------------------- benchmarks
def read_benchmarks(
    bench_dir: PathLike,
    runs: set[tuple[str, str, int, str, int]] | None = None,
    any_rate: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """One row per Snakemake benchmark file under ``bench_dir``: ``family`` (its first
    folder: train, generalization, figures, ...), ``path``, ``seconds`` (column ``s``) and
    ``end`` (the file's modification time, POSIX seconds).

    ``runs`` — (data, model, evaluation, lr, seed) with lr as in the run path — keeps, of the
    per-run families (:data:`RUN_FAMILIES`), only the files of these runs (e.g. a study's
    reported runs, when the folder also holds another configuration's); for the models in
    ``any_rate`` also those of the same (data, model, evaluation, seed) at any learning
    rate (their selection trainings). The per-run families of a model the paper lacks are
    labelled ``"<family> (not in the paper)"``, so that their time is stated apart.
    """
    bench_dir = Path(bench_dir)
    any_rate_runs = {(d, m, e, s) for d, m, e, _, s in runs or () if m in any_rate}
    rows = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        rel = path.relative_to(bench_dir)
        family = rel.parts[0] if len(rel.parts) > 1 else "other"
        if family in RUN_FAMILIES and len(rel.parts) == 6:
            _, data, model, ev, lr, seed = rel.with_suffix("").parts
            key = (
                data,
                model,
                int(ev.removeprefix("eval")),
                lr.removeprefix("lr"),
                int(seed.removeprefix("seed")),
            )
            if runs is not None and key not in runs and (*key[:3], key[4]) not in any_rate_runs:
                continue
            if model not in PAPER_MODELS:
                family = f"{family} ({NOT_IN_PAPER})"
        try:
            seconds = pd.read_csv(path, sep="\t")["s"].astype(float).sum()
        except (KeyError, ValueError, pd.errors.EmptyDataError):
            continue
        rows.append(
            {
                "family": family,
                "path": str(rel),
                "seconds": float(seconds),
                "end": path.stat().st_mtime,
            }
        )
    return pd.DataFrame(rows, columns=["family", "path", "seconds", "end"])


def time_per_family(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """Per rule family: ``jobs``, ``total_s``, ``mean_s``, ``max_s`` (largest total first)."""
    if benchmarks.empty:
        return pd.DataFrame(columns=["family", "jobs", "total_s", "mean_s", "max_s"])
    g = benchmarks.groupby("family")["seconds"]
    out = pd.DataFrame(
        {"jobs": g.size(), "total_s": g.sum(), "mean_s": g.mean(), "max_s": g.max()}
    ).reset_index()
    return out.sort_values("total_s", ascending=False, kind="stable").reset_index(drop=True)


def wall_seconds(benchmarks: pd.DataFrame) -> float:
    """Wall time from the first benchmarked job's start (its file's modification time minus
    its duration) to the last one's end; NaN without benchmarks. A study stopped and resumed
    later includes the pause."""
    if benchmarks.empty:
        return float("nan")
    start = (benchmarks["end"] - benchmarks["seconds"]).min()
    return float(benchmarks["end"].max() - start)
