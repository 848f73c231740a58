"""The record's header lines about the runs themselves: which code, how many trainings,
how often they resumed.

Why: a reader must see at a glance whether every run used the same code and whether
trainings were interrupted and resumed from checkpoints (which may change their results),
without reading the per-run tables.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from scalecnn.plots import style
from scalecnn.reproduction import NOT_RECORDED, run_commits, run_resumes

Verdicts = Mapping[tuple[str, int], tuple[pd.DataFrame, pd.DataFrame]]
"""(data, evaluation) → (verdict table, per-run table)."""


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def _commit_counts(frame: pd.DataFrame, counts: dict[str, int]) -> dict[str, int]:
    for commit, n in run_commits(frame).value_counts(sort=False).items():
        counts[commit] = counts.get(commit, 0) + int(n)
    return counts


def _commits_text(counts: dict[str, int], what: str) -> str:
    """``all N <what> at commit `abc` `` when one commit, else how many commits and the
    runs of each."""
    total = sum(counts.values())
    commits = sorted(c for c in counts if c != NOT_RECORDED)
    missing = counts.get(NOT_RECORDED, 0)
    if len(commits) == 1 and not missing:
        return f"all {total} {what} at commit `{commits[0]}`"
    if not commits:
        return f"not recorded ({_runs(missing)}: their `metrics.json` predate the key)"
    parts = [f"`{c}` ({_runs(counts[c])})" for c in commits]
    if missing:
        parts.append(f"not recorded ({_runs(missing)})")
    return (
        f"{total} {what} from {len(commits)} different commit(s)"
        + (f" and {missing} without one" if missing else "")
        + ": "
        + ", ".join(parts)
    )


def run_commits_line(verdicts: Verdicts, selection: pd.DataFrame | None = None) -> str:
    """Which code the reported runs used (column ``commit`` of every per-run table; a
    table without it counts as not recorded), and the selection trainings at the rates not
    chosen (``selection``, column ``commit``) if given: ``all N reported runs and all M
    selection trainings at commit `abc` `` when one commit, else the commits of each."""
    counts: dict[str, int] = {}
    for _, runs in verdicts.values():
        _commit_counts(runs, counts)
    head = "- code of the runs (each run's `metrics.json`): "
    if not counts:
        return head + "none"
    reported = _commits_text(counts, "reported runs")
    if selection is None or not len(selection):
        return head + reported
    at_other_rates = _commit_counts(selection, {})
    if set(at_other_rates) == set(counts) and len(counts) == 1 and NOT_RECORDED not in counts:
        (commit,) = counts
        total = sum(counts.values())
        return head + (
            f"all {total} reported runs and all {len(selection)} selection trainings at "
            f"commit `{commit}`"
        )
    return head + reported + "; selection trainings: " + _commits_text(at_other_rates, "trainings")


def _reported(verdicts: Verdicts) -> int:
    return sum(len(runs) for _, runs in verdicts.values())


def trainings_line(verdicts: Verdicts, selection: pd.DataFrame | None) -> str:
    """How many trainings the record reports and how many more selected the learning rate
    of a model the paper lacks (``selection``: one row per such training at the rate not
    chosen, with ``model``; None when the benchmark files are unknown)."""
    text = f"- trainings: {_reported(verdicts)} reported runs (the chosen rate's seeds)"
    if selection is None:
        return text + "; selection trainings at other rates unknown (no benchmark files)"
    if selection.empty:
        return text + "; no selection trainings at other rates among the benchmark files"
    models = ", ".join(style.model_label(m) for m in style.model_order(selection["model"]))
    return (
        text + f" and {len(selection)} selection training(s) at the rate(s) not chosen "
        f"({models}; from the benchmark files)"
    )


def resumes_line(verdicts: Verdicts, selection: pd.DataFrame | None = None) -> str:
    """How many trainings resumed from their checkpoint and how often in all (``resumes``
    of each run's ``metrics.json``; runs older than the key do not tell): over the reported
    runs and the selection trainings (``selection``, column ``resumes``) if given."""
    parts = [run_resumes(runs) for _, runs in verdicts.values()]
    if selection is not None and len(selection):
        parts.append(run_resumes(selection))
    resumes = pd.concat(parts) if parts else pd.Series(dtype="Int64")
    head = "- resumed from checkpoints: "
    known = resumes.dropna().astype(int)
    if known.empty:
        return head + "not recorded (the runs' `metrics.json` predate the key `resumes`)"
    of = f"{len(known)}" if len(known) == len(resumes) else f"the {len(known)}"
    text = f"{int((known > 0).sum())} of {of} trainings"
    if len(known) < len(resumes):
        text += " that record it"
    text += f", {int(known.sum())} resume{'s' if known.sum() != 1 else ''} in all"
    if len(known) < len(resumes):
        text += f"; not recorded for {len(resumes) - len(known)} (older `metrics.json`)"
    return head + text
