"""Target mlflow (rules/mlflow.smk): off by default with a message naming the config key;
when on, rule mlflow_sync puts the finished runs into the SQLite store results/mlflow.db
and reruns only when a run changed."""

import json
import sys
import time
from pathlib import Path

import pytest
import yaml
from wfutil import REPO, job_counts, snakemake

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_runs import fake_results

QUICK = REPO / "config" / "quick.yaml"


def test_target_is_off_by_default_naming_the_key(workdir):
    proc = snakemake(workdir, "-n", "--cores", "1", "mlflow", "--configfile", QUICK, check=False)
    assert proc.returncode != 0
    assert "mlflow.enabled" in proc.stdout + proc.stderr


def _finished_study(workdir: Path) -> Path:
    """A config whose trainings and selections are already done (faked), enabling mlflow."""
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(
        datasets={"emoji": {"source": "zenodo", "repetitions": 2}},
        models=["standard", "hermite"],
        paper_lr_models=["hermite"],
        mlflow={"enabled": True, "experiment": "quick"},
    )
    config = workdir / "study.yaml"
    config.write_text(yaml.safe_dump(cfg))
    data = workdir / "results" / "data" / "emoji.npz"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"x")
    time.sleep(0.05)
    fake_results(workdir / "results")
    return config


@pytest.mark.slow
def test_target_syncs_the_finished_runs_once(workdir):
    mlflow = pytest.importorskip("mlflow", reason='the mlflow extra: pip install -e ".[mlflow]"')
    config = _finished_study(workdir)
    proc = snakemake(workdir, "--cores", "1", "mlflow", "--configfile", config)
    assert job_counts(proc.stdout + proc.stderr) == {"mlflow_sync": 1, "mlflow": 1, "total": 2}
    summary = json.loads((workdir / "results/mlflow/synced.json").read_text())
    assert (summary["runs"], summary["added"], summary["experiment"]) == (5, 5, "quick")
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quick")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 5
    assert {r.data.tags["scalecnn.sync"] for r in runs} == {"complete"}

    again = snakemake(workdir, "--cores", "1", "mlflow", "--configfile", config)
    assert "Nothing to be done" in again.stdout + again.stderr

    time.sleep(0.05)
    run = workdir / "results/runs/emoji/standard/eval2/lr0.001/seed2/metrics.json"
    metrics = json.loads(run.read_text())
    metrics["test_acc"] = 12.5
    run.write_text(json.dumps(metrics))
    snakemake(workdir, "--cores", "1", "mlflow", "--configfile", config)
    summary = json.loads((workdir / "results/mlflow/synced.json").read_text())
    assert (summary["updated"], summary["unchanged"], summary["added"]) == (1, 4, 0)
    assert len(client.search_runs([experiment.experiment_id])) == 5
