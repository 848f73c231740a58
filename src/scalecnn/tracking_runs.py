"""A finished run folder as the MLflow sync (:mod:`scalecnn.tracking`) sees it.

:func:`find_runs` lists the finished runs under ``RESULTS/runs/`` (folders with
a ``metrics.json``, see ``docs/formats.md``), :func:`read_run` reads one into a
:class:`LocalRun` (metrics, per-epoch history, file digests, selection tags),
and :func:`run_params`, :func:`run_tags` and :func:`run_metrics` give what its
MLflow run records: parameters, tags, and ``(key, value, timestamp ms, step)``
metrics with timestamps from :func:`run_times`. Nothing here needs mlflow.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

FINGERPRINT_VERSION = "1"

PARAM_KEYS = (
    "model",
    "data",
    "evaluation",
    "lr",
    "seed",
    "kernel_size",
    "interpolation",
    "batch_size",
    "max_epochs",
    "patience",
    "reshuffle",
    "device",
)
FINAL_METRICS = (
    "test_acc",
    "test_loss",
    "best_val_acc",
    "best_epoch",
    "epochs",
    "train_time_last_epoch",
    "train_time_mean",
)
SERIES = ("train_loss", "train_acc", "val_loss", "val_acc", "train_time")


# --------------------------------------------------------------------------- local runs
@dataclass
class LocalRun:
    """A finished run folder under ``RESULTS/runs/``."""

    key: str  # the folder relative to RESULTS, with '/' (tag scalecnn.run_dir)
    path: Path
    metrics: dict[str, Any]
    history: pd.DataFrame
    files: dict[str, str]  # name -> sha256 of the folder's files (hidden ones left out)
    selection: dict[str, str]  # tags chosen_rate and lr_source
    mtime: float  # of metrics.json

    @property
    def params(self) -> dict[str, Any]:
        return self.metrics["params"]

    @property
    def name(self) -> str:
        """The MLflow run name: ``data/model/evalE/lrLR/seedS``."""
        return self.key.removeprefix("runs/")

    def fingerprint(self, artifacts: str) -> str:
        """sha256 of what the stored run is made of: files, selection tags, artifact mode."""
        payload = {
            "version": FINGERPRINT_VERSION,
            "files": self.files,
            "selection": self.selection,
            "artifacts": artifacts,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_files(folder: Path) -> list[Path]:
    """The run folder's files that are synced: regular files, hidden ones (checkpoints,
    temporary files of an atomic write) left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def selection_tags(results: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """``chosen_rate`` and ``lr_source`` of a run from its configuration's selection record
    ``RESULTS/selection/{data}/{model}/eval{E}.json`` (``pending`` before it exists)."""
    folder = results / "selection" / str(params["data_name"]) / str(params["model"])
    record = folder / f"eval{params['evaluation']}.json"
    if not record.is_file():
        return {"chosen_rate": "pending", "lr_source": "pending"}
    try:
        rec = json.loads(record.read_text())
        chosen = float(rec["chosen_lr"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"selection record {record}: no readable chosen_lr ({exc})") from exc
    same = math.isclose(chosen, float(params["lr"]), rel_tol=1e-9)
    return {"chosen_rate": str(same).lower(), "lr_source": str(rec.get("source", "selection"))}


def read_run(results: Path, folder: Path) -> LocalRun:
    """The finished run in ``folder`` (its ``metrics.json`` exists) under ``results``."""
    metrics_file = folder / "metrics.json"
    raw = metrics_file.read_bytes()
    try:
        metrics = json.loads(raw)
        params = metrics["params"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{metrics_file}: not a run's metrics.json ({exc!r})") from exc
    missing = [k for k in ("model", "data_name", "evaluation", "lr", "seed") if k not in params]
    if missing:
        raise ValueError(f"{metrics_file}: params lacks {', '.join(missing)}")
    history_file = folder / "history.csv"
    if history_file.is_file():
        history = pd.read_csv(history_file)
    else:  # the same series are in metrics.json
        history = pd.DataFrame(metrics.get("history") or {})
    files = {p.name: _sha256_file(p) for p in run_files(folder)}
    files["metrics.json"] = hashlib.sha256(raw).hexdigest()  # the bytes that were parsed
    return LocalRun(
        key=folder.relative_to(results).as_posix(),
        path=folder,
        metrics=metrics,
        history=history,
        files=files,
        selection=selection_tags(results, params),
        mtime=metrics_file.stat().st_mtime,
    )


def find_runs(results: str | os.PathLike) -> list[Path]:
    """Folders ``RESULTS/runs/{data}/{model}/eval{E}/lr{lr}/seed{S}`` with a ``metrics.json``
    (a run's last output, written atomically: the run is finished), sorted."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"results folder {results} does not exist")
    return sorted(p.parent for p in results.glob("runs/*/*/eval*/lr*/seed*/metrics.json"))


# --------------------------------------------------------------------------- MLflow records
def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def run_params(run: LocalRun) -> dict[str, str]:
    """The MLflow parameters of a run (``data`` is the dataset name, as in runs.csv)."""
    p = run.params
    values = {key: p.get(key) for key in PARAM_KEYS}
    values["data"] = p["data_name"]
    values["data_file"] = p.get("data")
    if p.get("basis"):
        values["basis"] = p["basis"]
    if p.get("plugins"):
        values["plugins"] = p["plugins"]
    if run.metrics.get("num_parameters") is not None:
        values["num_parameters"] = run.metrics["num_parameters"]
    return {k: _param_value(v) for k, v in values.items() if v is not None}


TAG_CODE_COMMIT = "scalecnn.code_commit"
"""Tag with ``metrics.json``'s ``commit`` (absent for runs older than that key)."""


def run_tags(run: LocalRun, commit: str) -> dict[str, str]:
    """Tags of a run besides the sync bookkeeping ones."""
    tags = {
        "status": str(run.metrics.get("status", "ok")),
        **run.selection,
        "commit": str(run.metrics.get("commit") or commit),
        "mlflow.source.git.commit": str(run.metrics.get("commit") or commit),
        "scalecnn.run_path": str(run.path.resolve()),
    }
    if run.metrics.get("message"):
        tags["message"] = str(run.metrics["message"])
    if run.metrics.get("commit"):  # the code the run used, as recorded by the training
        tags[TAG_CODE_COMMIT] = str(run.metrics["commit"])
    return tags


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_times(run: LocalRun) -> tuple[int, int, list[int]]:
    """(start, end, per-epoch timestamps) in ms: the end is metrics.json's time, the start
    that minus the training seconds (training epochs only, no validation or test)."""
    end = int(run.mtime * 1000)
    times = [float(t) for t in run.history.get("train_time", pd.Series(dtype=float))]
    times = [t if math.isfinite(t) and t > 0 else 0.0 for t in times]
    start = end - int(sum(times) * 1000)
    stamps, elapsed = [], 0.0
    for t in times:
        elapsed += t
        stamps.append(start + int(elapsed * 1000))
    return start, end, stamps


def run_metrics(run: LocalRun) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp ms, step) of the final metrics (step 0) and the per-epoch
    series (step = epoch); missing values (e.g. no test accuracy) are left out, a NaN
    loss of a non-finite run is kept."""
    start, end, stamps = run_times(run)
    rows = []
    for key in FINAL_METRICS:
        value = _float_or_none(run.metrics.get(key))
        if value is not None:
            rows.append((key, value, end, 0))
    history = run.history
    if "epoch" in history:
        epochs = [int(e) for e in history["epoch"]]
        for key in SERIES:
            if key not in history:
                continue
            for i, (epoch, value) in enumerate(zip(epochs, history[key])):
                value = _float_or_none(value)
                if value is not None:
                    stamp = stamps[i] if i < len(stamps) else end
                    rows.append((key, value, stamp, epoch))
    return rows
