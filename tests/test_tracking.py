"""scalecnn.tracking / ``scalecnn mlflow-sync`` against the real mlflow package and a real
SQLite store in a temporary folder (skipped only where the ``mlflow`` extra is missing)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow", reason='the mlflow extra: pip install -e ".[mlflow]"')

from fake_runs import fake_results, fake_run, fake_selection  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from scalecnn import tracking  # noqa: E402
from scalecnn.cli import main  # noqa: E402

EXPERIMENT = "scalecnn"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """The faked result set of :func:`fake_runs.fake_results`."""
    return fake_results(tmp_path / "results")


def uri(results: Path) -> str:
    return tracking.default_tracking_uri(results)


def all_runs(results: Path, deleted: bool = False) -> list:
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri(results))
    exp = client.get_experiment_by_name(EXPERIMENT)
    view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    return list(client.search_runs([exp.experiment_id], run_view_type=view, max_results=1000))


def by_name(results: Path) -> dict:
    return {r.info.run_name: r for r in all_runs(results)}


def snapshot(results: Path) -> dict:
    """Everything a sync could change, per run: id, params, metrics, tags, status."""
    return {
        r.info.run_name: (
            r.info.run_id,
            r.info.status,
            r.data.params,
            {k: repr(v) for k, v in r.data.metrics.items()},  # NaN == NaN
            r.data.tags,
        )
        for r in all_runs(results, deleted=True)
    }


def test_sync_puts_every_run_with_params_metrics_curves_tags_and_artifacts(results):
    summary = tracking.sync(results)
    assert (results / "mlflow.db").is_file()
    assert (summary.runs, summary.added, summary.unchanged) == (5, 5, 0)
    runs = by_name(results)
    assert sorted(runs) == [
        "emoji/hermite/eval2/lr0.001/seed1",
        "emoji/hermite/eval2/lr0.001/seed2",
        "emoji/standard/eval2/lr0.001/seed1",
        "emoji/standard/eval2/lr0.001/seed2",
        "emoji/standard/eval2/lr0.01/seed1",
    ]
    client = MlflowClient(tracking_uri=uri(results))
    for name, run in runs.items():
        folder = results / "runs" / name
        metrics = json.loads((folder / "metrics.json").read_text())
        p = metrics["params"]
        params = run.data.params
        expected = {
            "model": p["model"],
            "data": "emoji",
            "evaluation": "2",
            "lr": str(p["lr"]),
            "seed": str(p["seed"]),
            "kernel_size": "7",
            "interpolation": "bicubic",
            "batch_size": "16",
            "patience": "10",
            "max_epochs": "60",
            "device": "cpu",
            "reshuffle": "False",
        }
        assert {k: params[k] for k in expected} == expected
        final = run.data.metrics
        for key in ("best_val_acc", "best_epoch", "epochs", "train_time_mean"):
            assert final[key] == metrics[key], (name, key)
        if metrics["status"] == "ok":
            assert final["test_acc"] == metrics["test_acc"]
            assert final["test_loss"] == metrics["test_loss"]
        else:
            assert "test_acc" not in final
        history = pd.read_csv(folder / "history.csv")
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "train_time"):
            points = client.get_metric_history(run.info.run_id, key)
            got = sorted((m.step, m.value) for m in points)
            assert [step for step, _ in got] == history["epoch"].tolist(), (name, key)
            np.testing.assert_array_equal([v for _, v in got], history[key], err_msg=key)
        tags = run.data.tags
        assert tags["status"] == metrics["status"]
        assert tags["scalecnn.sync"] == "complete"
        assert tags["scalecnn.run_dir"] == f"runs/{name}"
        assert tags["commit"]
        # the code commit the training recorded (one faked run has one), else no such tag
        assert tags.get("scalecnn.code_commit") == metrics.get("commit")
        if "commit" in metrics:
            assert tags["commit"] == metrics["commit"] == "c0ffee"
        chosen = name.startswith(("emoji/standard/eval2/lr0.001", "emoji/hermite"))
        assert tags["chosen_rate"] == str(chosen).lower()
        assert tags["lr_source"] == ("paper" if "hermite" in name else "selection")
        assert run.info.status == ("FINISHED" if metrics["status"] == "ok" else "FAILED")
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"metrics.json", "history.csv", "model.pt", "predictions.npy"}
        local = Path(client.download_artifacts(run.info.run_id, "model.pt"))
        assert local.read_bytes() == (folder / "model.pt").read_bytes()


def test_tables_read_back_equal_runs_csv(results, monkeypatch):
    tracking.sync(results)
    expected = pd.read_csv(results / "tables/runs.csv")
    back = tracking.read_runs_table(uri(results), EXPERIMENT)
    buffer = io.StringIO(back.to_csv(index=False))
    pd.testing.assert_frame_equal(pd.read_csv(buffer), expected)
    # MLflow's own export: the params.*/metrics.* columns of runs.csv
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri(results))
    exported = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string="tags.chosen_rate = 'true' and tags.`scalecnn.sync` = 'complete'",
    )
    exported = exported.sort_values(["params.model", "params.seed"]).reset_index(drop=True)
    want = expected.sort_values(["params.model", "params.seed"]).reset_index(drop=True)
    for column in [c for c in want if c.startswith("params.")]:
        assert exported[column].tolist() == [str(v) for v in want[column]], column
    for column in [c for c in want if c.startswith("metrics.")]:
        pd.testing.assert_series_equal(
            exported[column].astype(float), want[column].astype(float), check_names=False
        )


def test_second_sync_changes_nothing(results):
    first = tracking.sync(results)
    before = snapshot(results)
    second = tracking.sync(results)
    assert (second.added, second.updated, second.repaired, second.deleted) == (0, 0, 0, 0)
    assert second.unchanged == 5
    assert second.run_ids == first.run_ids
    assert snapshot(results) == before


def test_changed_run_is_updated_and_new_runs_are_added(results):
    first = tracking.sync(results)
    name = "emoji/standard/eval2/lr0.001/seed2"
    folder = results / "runs" / name
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["test_acc"] = 77.5
    metrics["epochs"] = 7
    (folder / "metrics.json").write_text(json.dumps(metrics))
    history = pd.read_csv(folder / "history.csv")
    history.loc[len(history)] = [7, 0.1, 99.0, 2.5, 0.2, 98.0]
    history.to_csv(folder / "history.csv", index=False)
    fake_run(results, "hermite", 0.001, 3)

    second = tracking.sync(results)
    assert (second.added, second.updated, second.unchanged, second.deleted) == (1, 1, 4, 1)
    runs = by_name(results)
    assert len(runs) == 6  # no duplicates
    new = runs[name]
    assert new.info.run_id != first.run_ids[f"runs/{name}"]
    assert new.data.metrics["test_acc"] == 77.5
    assert new.data.metrics["epochs"] == 7
    client = MlflowClient(tracking_uri=uri(results))
    assert [m.step for m in client.get_metric_history(new.info.run_id, "val_acc")] == list(
        range(1, 8)
    )
    others = {k: v for k, v in first.run_ids.items() if k != f"runs/{name}"}
    assert {k: second.run_ids[k] for k in others} == others


def test_selection_record_appearing_later_updates_the_tag(results):
    (results / "selection/emoji/standard/eval2.json").unlink()
    tracking.sync(results)
    assert by_name(results)["emoji/standard/eval2/lr0.01/seed1"].data.tags["chosen_rate"] == (
        "pending"
    )
    fake_selection(results, "standard", 0.01)
    summary = tracking.sync(results)
    assert summary.updated == 3  # the three standard runs
    tags = {n: r.data.tags["chosen_rate"] for n, r in by_name(results).items()}
    assert tags["emoji/standard/eval2/lr0.01/seed1"] == "true"
    assert tags["emoji/standard/eval2/lr0.001/seed1"] == "false"


def test_interrupted_sync_is_repaired(results, monkeypatch):
    """A sync killed while writing the third run (its metrics and artifacts logged, not yet
    terminated nor marked complete) leaves two complete runs and one incomplete one; the
    next sync keeps the two, redoes the third and adds the rest."""
    calls = {"n": 0}
    original = MlflowClient.set_terminated

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_terminated", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tracking.sync(results)
    monkeypatch.setattr(MlflowClient, "set_terminated", original)
    complete = [r for r in all_runs(results) if r.data.tags.get("scalecnn.sync") == "complete"]
    assert len(complete) == 2 and len(all_runs(results)) == 3

    summary = tracking.sync(results)
    assert (summary.unchanged, summary.repaired, summary.added) == (2, 1, 2)
    runs = all_runs(results)
    assert len(runs) == 5
    assert all(r.data.tags["scalecnn.sync"] == "complete" for r in runs)
    assert len({r.data.tags["scalecnn.run_dir"] for r in runs}) == 5


def test_links_instead_of_copies_and_prune(results):
    tracking.sync(results, artifacts="link")
    client = MlflowClient(tracking_uri=uri(results))
    run = by_name(results)["emoji/standard/eval2/lr0.01/seed1"]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["run_files.json"]
    links = json.loads(
        Path(client.download_artifacts(run.info.run_id, "run_files.json")).read_text()
    )
    folder = results / "runs/emoji/standard/eval2/lr0.01/seed1"
    assert links["files"]["model.pt"]["uri"] == (folder / "model.pt").resolve().as_uri()
    assert set(links["files"]) == {"metrics.json", "history.csv", "model.pt", "predictions.npy"}

    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    kept = tracking.sync(results, artifacts="link")
    assert (kept.runs, kept.unchanged, kept.pruned) == (4, 4, 0)
    assert len(all_runs(results)) == 5
    pruned = tracking.sync(results, artifacts="link", prune=True)
    assert (pruned.pruned, pruned.deleted) == (1, 1)
    assert "emoji/standard/eval2/lr0.01/seed1" not in by_name(results)


def test_cli_any_tracking_uri_and_summary(results, tmp_path, capsys):
    store = tmp_path / "elsewhere" / "store.db"
    store.parent.mkdir()
    summary = tmp_path / "synced.json"
    argv = [
        "mlflow-sync",
        str(results),
        "--tracking-uri",
        f"sqlite:///{store}",
        "--experiment",
        "quick",
        "--summary",
        str(summary),
    ]
    assert main(argv) == 0
    assert "5 runs in experiment 'quick'" in capsys.readouterr().out
    counts = json.loads(summary.read_text())
    assert (counts["runs"], counts["added"], counts["experiment"]) == (5, 5, "quick")
    assert store.is_file() and not (results / "mlflow.db").exists()
    assert (tmp_path / "elsewhere" / "mlflow-artifacts").is_dir()
    assert main(argv) == 0
    assert json.loads(summary.read_text())["unchanged"] == 5


def test_bad_values_are_named(results, tmp_path, capsys):
    assert main(["mlflow-sync", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(ValueError, match="artifacts='zip'"):
        tracking.sync(results, artifacts="zip")
    with pytest.raises(ValueError, match="experiment name ''"):
        tracking.sync(results, experiment="")
    bad = results / "runs/emoji/standard/eval2/lr0.01/seed1/metrics.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="lr0.01/seed1/metrics.json"):
        tracking.sync(results)
