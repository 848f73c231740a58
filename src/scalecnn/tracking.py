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

What one run folder becomes in MLflow (:class:`~scalecnn.tracking_runs.LocalRun`,
its parameters, tags and metrics) is in :mod:`scalecnn.tracking_runs`; this
module talks to the MLflow client.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scalecnn.aggregate import RUN_METRIC_COLUMNS, runs_frame
from scalecnn.provenance import git_commit
from scalecnn.tracking_runs import (
    TAG_CODE_COMMIT,
    LocalRun,
    find_runs,
    read_run,
    run_files,
    run_metrics,
    run_params,
    run_tags,
    run_times,
)

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
# MLflow's UI shows an experiment of this kind in its model-training view (not GenAI)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

INTEGER_METRICS = ("best_epoch", "epochs")
METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch request


def _mlflow() -> Any:
    """The ``mlflow`` module, or an ImportError that says how to install it."""
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"the MLflow sync needs the mlflow package: {INSTALL_HINT}") from exc
    return mlflow


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
            row["commit"] = tags.get(TAG_CODE_COMMIT)
            for key in RUN_METRIC_COLUMNS[1:]:
                if key == "commit":
                    continue
                value = metrics.get(key)
                if value is not None and key in INTEGER_METRICS:
                    value = int(value)
                row[key] = value
            rows.append(row)
    return runs_frame(rows)
