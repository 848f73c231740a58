"""The study's finished runs in an MLflow tracking store (``scalecnn mlflow-sync``).

:func:`sync` puts every finished run under ``RESULTS/runs/`` (a folder with a
``metrics.json``, see ``docs/formats.md``) into one MLflow experiment, one MLflow
run per training:

- parameters: model, data, evaluation, lr, seed, kernel size, interpolation, batch
  size, max epochs, patience, reshuffle, device (and the data file, basis, plugins,
  number of parameters);
- metrics: the final ``test_acc``, ``test_loss``, ``best_val_acc``, ``best_epoch``,
  ``epochs``, ``train_time_last_epoch``, ``train_time_mean``, and the per-epoch series
  ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``train_time`` (step = epoch);
- tags: ``status`` (ok, nonfinite), ``chosen_rate`` (``true`` when the run's rate is
  its configuration's chosen rate, ``false``, or ``pending`` before the selection
  record exists), ``lr_source`` (selection, paper), ``commit``;
- artifacts: the run folder's files (``artifacts="copy"``), or a ``run_files.json``
  with ``file://`` links to them and their sha256 (``artifacts="link"``).

Idempotent and incremental. A run is identified by its run folder (tag
``scalecnn.run_dir``, relative to RESULTS) and versioned by a fingerprint (tag
``scalecnn.fingerprint``: sha256 of the folder's files, the selection tags and the
artifact mode). Each MLflow run is written in the order: create (tag
``scalecnn.sync=incomplete``), parameters and metrics in batches, artifacts,
terminate, and last the tag ``scalecnn.sync=complete``. A sync keeps a stored run
whose fingerprint matches and that is complete; it deletes (MLflow's soft delete)
every other stored run of that folder -- outdated, or left incomplete by an
interrupted sync -- and writes the run anew. So a second sync changes nothing, a
changed run is replaced, new runs are added, and an interrupted sync is repaired by
the next one; a reader that wants only finished records filters on
``tags.`scalecnn.sync` = 'complete'``. Syncs into one store must not run
concurrently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scalecnn.aggregate import RUN_METRIC_COLUMNS, runs_frame
from scalecnn.record import git_commit

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install -e ".[mlflow]"'
DEFAULT_EXPERIMENT = "scalecnn"
DEFAULT_DB = "mlflow.db"
ARTIFACT_DIR = "mlflow-artifacts"
ARTIFACT_MODES = ("copy", "link")
LINKS_FILE = "run_files.json"

TAG_RUN_DIR = "scalecnn.run_dir"
TAG_FINGERPRINT = "scalecnn.fingerprint"
TAG_SYNC = "scalecnn.sync"
SYNC_COMPLETE = "complete"
SYNC_INCOMPLETE = "incomplete"
FINGERPRINT_VERSION = "1"
# MLflow's UI shows an experiment of this kind in its model-training view (not GenAI)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

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
INTEGER_METRICS = ("best_epoch", "epochs")
INTEGER_PARAMS = ("evaluation", "seed", "kernel_size")
METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch request


def _mlflow() -> Any:
    """The ``mlflow`` module, or an ImportError that says how to install it."""
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"the MLflow sync needs the mlflow package: {INSTALL_HINT}") from exc
    return mlflow


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


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --------------------------------------------------------------------------- store
def default_tracking_uri(results: str | os.PathLike) -> str:
    """``sqlite:////abs/RESULTS/mlflow.db``: a local SQLite MLflow store, no server."""
    return f"sqlite:///{(Path(results).resolve() / DEFAULT_DB).as_posix()}"


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory when it
    has three slashes), None for other stores."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :])


def get_experiment_id(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of the active experiment ``name``, created (at ``artifact_location``) if absent."""
    if not name or not name.strip():
        raise ValueError(f"experiment name {name!r}: must not be empty")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        log.info("creating MLflow experiment %r", name)
        return client.create_experiment(
            name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS
        )
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"experiment {name!r} is deleted in the tracking store; restore it "
            "(mlflow experiments restore) or choose another name (--experiment)"
        )
    return experiment.experiment_id


def stored_runs(client: MlflowClient, experiment_id: str) -> dict[str, list[Run]]:
    """Active runs of the experiment written by the sync, by run folder (tag scalecnn.run_dir);
    other runs of the experiment are left alone."""
    from mlflow.entities import ViewType

    by_key: dict[str, list[Run]] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        for run in page:
            key = run.data.tags.get(TAG_RUN_DIR)
            if key:
                by_key.setdefault(key, []).append(run)
        token = page.token
        if not token:
            return by_key


def _is_current(run: Run, fingerprint: str) -> bool:
    tags = run.data.tags
    return tags.get(TAG_SYNC) == SYNC_COMPLETE and tags.get(TAG_FINGERPRINT) == fingerprint


def write_run(
    client: MlflowClient,
    experiment_id: str,
    run: LocalRun,
    fingerprint: str,
    commit: str,
    artifacts: str,
) -> str:
    """Create the MLflow run of ``run`` and log everything; returns its run id. The tag
    ``scalecnn.sync=complete`` is set last: without it the run is incomplete."""
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    start, end, _ = run_times(run)
    created = client.create_run(
        experiment_id,
        start_time=start,
        run_name=run.name,
        tags={TAG_RUN_DIR: run.key, TAG_FINGERPRINT: fingerprint, TAG_SYNC: SYNC_INCOMPLETE},
    )
    run_id = created.info.run_id
    params = [Param(k, v) for k, v in run_params(run).items()]
    tags = [RunTag(k, v) for k, v in run_tags(run, commit).items()]
    client.log_batch(run_id, params=params, tags=tags, synchronous=True)
    metrics = [Metric(k, v, t, s) for k, v, t, s in run_metrics(run)]
    for batch in _batches(metrics, METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=batch, synchronous=True)
    if artifacts == "copy":
        for path in run_files(run.path):
            client.log_artifact(run_id, str(path))
    else:
        links = {
            name: {
                "uri": (run.path / name).resolve().as_uri(),
                "sha256": digest,
                "bytes": (run.path / name).stat().st_size,
            }
            for name, digest in run.files.items()
        }
        client.log_dict(
            run_id, {"run_dir": run.path.resolve().as_uri(), "files": links}, LINKS_FILE
        )
    ok = run.metrics.get("status", "ok") == "ok"
    status = RunStatus.to_string(RunStatus.FINISHED if ok else RunStatus.FAILED)
    client.set_terminated(run_id, status=status, end_time=end)
    client.set_tag(run_id, TAG_SYNC, SYNC_COMPLETE, synchronous=True)
    return run_id


@dataclass
class SyncSummary:
    """What a sync did (written as JSON by ``--summary``)."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    artifacts: str
    runs: int = 0  # finished run folders found
    added: int = 0  # new run folders
    updated: int = 0  # changed run folders (outdated MLflow run replaced)
    repaired: int = 0  # run folders whose MLflow run an interrupted sync left incomplete
    unchanged: int = 0
    deleted: int = 0  # MLflow runs deleted (outdated, incomplete, duplicates, pruned)
    pruned: int = 0  # run folders that no longer exist (with prune=True)
    run_ids: dict[str, str] = field(default_factory=dict)  # run folder -> MLflow run id

    def as_dict(self, with_ids: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_ids:
            out.pop("run_ids")
        return out

    def line(self) -> str:
        return (
            f"{self.runs} runs in experiment {self.experiment!r} of {self.tracking_uri}: "
            f"{self.added} added, {self.updated} updated, {self.repaired} repaired, "
            f"{self.unchanged} unchanged, {self.pruned} pruned"
        )


def sync(
    results: str | os.PathLike,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    artifacts: str = "copy",
    prune: bool = False,
    artifact_location: str | None = None,
) -> SyncSummary:
    """Put every finished run under ``results/runs/`` into the MLflow experiment.

    Args:
        results: the results folder (``results``), holding ``runs/`` and ``selection/``.
        tracking_uri: any MLflow tracking URI; default :func:`default_tracking_uri`.
        experiment: the experiment's name (created if absent).
        artifacts: ``copy`` the run folder's files, or ``link`` to them.
        prune: also delete the MLflow runs whose run folder no longer exists.
        artifact_location: where a new experiment keeps its artifacts; default for a SQLite
            store ``mlflow-artifacts/`` beside the database file, else the store's default.
    """
    if artifacts not in ARTIFACT_MODES:
        raise ValueError(f"artifacts={artifacts!r}: expected one of {', '.join(ARTIFACT_MODES)}")
    results = Path(results)
    folders = find_runs(results)
    _mlflow()
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or default_tracking_uri(results)
    db = _sqlite_path(uri)
    if db is not None:
        if not db.parent.is_dir():
            raise FileNotFoundError(f"tracking URI {uri}: folder {db.parent} does not exist")
        if artifact_location is None:
            artifact_location = (db.parent.resolve() / ARTIFACT_DIR).as_uri()
    client = MlflowClient(tracking_uri=uri)
    experiment_id = get_experiment_id(client, experiment, artifact_location)
    summary = SyncSummary(uri, experiment, experiment_id, artifacts, runs=len(folders))
    stored = stored_runs(client, experiment_id)
    commit = git_commit(results.resolve(), ignore=())

    def delete(runs: Iterable[Run]) -> None:
        for old in runs:
            client.delete_run(old.info.run_id)
            summary.deleted += 1

    for folder in folders:
        local = read_run(results, folder)
        fingerprint = local.fingerprint(artifacts)
        previous = stored.pop(local.key, [])
        current = [r for r in previous if _is_current(r, fingerprint)]
        if current:  # keep one, drop duplicates and stale ones
            delete(r for r in previous if r is not current[0])
            summary.unchanged += 1
            summary.run_ids[local.key] = current[0].info.run_id
            continue
        if any(r.data.tags.get(TAG_SYNC) == SYNC_COMPLETE for r in previous):
            summary.updated += 1
        elif previous:
            summary.repaired += 1
        else:
            summary.added += 1
        delete(previous)
        summary.run_ids[local.key] = write_run(
            client, experiment_id, local, fingerprint, commit, artifacts
        )
        log.info("synced %s", local.key)
    if prune:
        for runs in stored.values():
            delete(runs)
            summary.pruned += 1
    log.info("%s", summary.line())
    return summary


# --------------------------------------------------------------------------- read back
def read_runs_table(
    tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT, reported_only: bool = True
) -> pd.DataFrame:
    """The store's complete runs as ``runs.csv`` (:func:`scalecnn.aggregate.runs_table`):
    same columns, order and types; ``reported_only``: the runs at the chosen rate."""
    _mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"no experiment {experiment!r} in tracking store {tracking_uri}")
    rows = []
    for runs in stored_runs(client, found.experiment_id).values():
        for run in runs:
            tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
            if tags.get(TAG_SYNC) != SYNC_COMPLETE:
                continue
            if reported_only and tags.get("chosen_rate") != "true":
                continue
            row: dict[str, Any] = {
                "data": params["data"],
                "model": params["model"],
                "evaluation": int(params["evaluation"]),
                "lr": float(params["lr"]),
                "seed": int(params["seed"]),
                "kernel_size": int(params["kernel_size"]),
                "interpolation": params["interpolation"],
                "status": tags.get("status"),
            }
            for key in RUN_METRIC_COLUMNS[1:]:
                value = metrics.get(key)
                if value is not None and key in INTEGER_METRICS:
                    value = int(value)
                row[key] = value
            rows.append(row)
    return runs_frame(rows)
