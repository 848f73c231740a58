"""The workflow's DAG: job counts, config validation, lint and formatting."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from wfutil import REPO, job_counts, snakemake

PAPER = REPO / "config" / "config.yaml"
QUICK = REPO / "config" / "quick.yaml"


def test_paper_config_dry_run_lists_the_selection_trainings(workdir):
    out = snakemake(workdir, "-n", "--cores", "1", "--configfile", PAPER).stdout
    counts = job_counts(out)
    # 4 datasets × 11 models × 4 evaluations × 2 rates × 5 seeds
    assert counts["train"] == 1760
    assert counts["select_lr"] == 4 * 11 * 4
    assert counts["prepare_data"] == 4
    assert counts["disco_basis"] == 1


def _fake_selection_done(workdir, config, chosen="0.001"):
    """Create the files the selection stage would have written (oldest first)."""
    cfg = yaml.safe_load(config.read_text())
    data_dir = workdir / "results" / "data"
    data_dir.mkdir(parents=True)
    for d in cfg["datasets"]:
        (data_dir / f"{d}.npz").write_bytes(b"x")
    basis = workdir / cfg["disco"]["basis"]
    basis.parent.mkdir(parents=True, exist_ok=True)
    basis.write_bytes(b"x")
    for d in cfg["datasets"]:
        for m in cfg["models"]:
            for e in cfg["evaluations"]:
                for lr in cfg["learning_rates"]:
                    for s in range(1, cfg["selection_seeds"] + 1):
                        run = workdir / f"results/runs/{d}/{m}/eval{e}/lr{lr:g}/seed{s}"
                        run.mkdir(parents=True)
                        for f in ("metrics.json", "history.csv", "model.pt", "predictions.npy"):
                            (run / f).write_text("{}")
                sel = workdir / f"results/selection/{d}/{m}/eval{e}.json"
                sel.parent.mkdir(parents=True, exist_ok=True)
                sel.write_text(json.dumps({"chosen_lr": float(chosen)}))


@pytest.mark.slow
def test_paper_config_after_selection_requests_the_remaining_trainings(workdir):
    _fake_selection_done(workdir, PAPER)
    out = snakemake(workdir, "-n", "--cores", "1", "--configfile", PAPER).stdout
    counts = job_counts(out)
    # emoji: 11 models × 4 evals × (50 − 5) = 1,980; others 3 × 44 × (25 − 5) = 2,640
    assert counts["train"] == 4620
    # with the selection's trainings on disk, the study's trainings add up to the reported
    # runs (emoji 50 seeds, the others 25, all at the chosen rate) plus the selection seeds
    # (1-5) at the rate not chosen: 11 × 4 × (50 + 3 × 25) + 4 × 11 × 4 × 5 = 5,500 + 880
    done = len(list((workdir / "results" / "runs").rglob("metrics.json")))
    assert counts["train"] + done == 5500 + 880
    assert "select_lr" not in counts


def test_quick_config_dry_run(workdir):
    counts = job_counts(snakemake(workdir, "-n", "--cores", "1", "--configfile", QUICK).stdout)
    # standard: 2 rates × 1 selection seed; the paper's rate for ensemble and hermite
    # (seeds 1-2) and energy_pool (seed 1, model_repetitions), listed from the start (not
    # after standard's selection)
    assert counts["train"] == 2 + 2 * 2 + 1
    assert counts["select_lr"] == 4
    assert counts["prepare_data"] == 1
    assert "disco_basis" not in counts


def _bad_config(workdir, **changes):
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(changes)
    path = workdir / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"models": ["standard", "resnet50"]}, "resnet50"),
        ({"modles": ["standard"]}, "modles"),
        ({"selection_seeds": 0}, "selection_seeds|minimum"),
        ({"max_epochs": -1}, "max_epochs|minimum"),
        ({"evaluations": [5]}, "evaluations|5"),
        ({"datasets": {"cifar": {"source": "zenodo", "repetitions": 2}}}, "cifar"),
        (
            {"datasets": {"mnist": {"source": "generate", "repetitions": 2}}},
            "datasets.mnist.source",
        ),
    ],
)
def test_invalid_config_fails_before_any_job_naming_the_key(workdir, changes, message):
    import re

    proc = snakemake(
        workdir, "-n", "--cores", "1", "--configfile", _bad_config(workdir, **changes), check=False
    )
    assert proc.returncode != 0
    assert re.search(message, proc.stdout + proc.stderr)
    assert not (workdir / "results").exists()


def test_config_override_on_the_command_line(workdir):
    out = snakemake(
        workdir, "-n", "--cores", "1", "--configfile", QUICK, "--config", "selection_seeds=2"
    ).stdout
    # standard: 2 rates × 2 selection seeds; the paper-rate models unchanged (ensemble and
    # hermite 2 seeds, energy_pool 1)
    assert job_counts(out)["train"] == 2 * 2 + 2 * 2 + 1


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", str(QUICK)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt not installed")
def test_snakefmt_is_clean():
    proc = subprocess.run(
        ["snakefmt", "--check", "Snakefile", "rules"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_wire_named_functions_not_lambdas():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        assert "lambda" not in smk.read_text(), f"{smk.name}: use a get_* function"


def _schema_properties(node, path=""):
    """(path, definition) of every property of a JSON schema, nested ones included."""
    for name, prop in node.get("properties", {}).items():
        yield f"{path}{name}", prop
        yield from _schema_properties(prop, f"{path}{name}.")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _schema_properties(node["additionalProperties"], f"{path}*.")


def test_every_config_schema_property_has_a_description():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = [*_schema_properties(schema), *_schema_properties(schema["$defs"]["resources"])]
    assert len(props) > 40
    missing = [path for path, prop in props if not prop.get("description")]
    assert not missing, missing


def test_every_key_of_the_default_config_has_a_comment():
    import re

    lines = PAPER.read_text().splitlines()
    uncommented = [
        line
        for i, line in enumerate(lines)
        if re.match(r"\s*\w+:", line)
        and "#" not in line
        and not (i and lines[i - 1].lstrip().startswith("#"))
    ]
    assert not uncommented, uncommented
