"""config/reproduce_emoji.yaml: the paper's protocol and learning rates on one machine."""

import re

import pytest
import yaml
from wfutil import REPO, job_counts, snakemake

REPRODUCE = REPO / "config" / "reproduce_emoji.yaml"
QUICK = REPO / "tests" / "workflow" / "dag_config.yaml"  # the earlier quick study


def test_reproduce_config_trains_the_paper_rates_and_selects_for_the_new_models(workdir):
    out = snakemake(workdir, "-n", "--cores", "2", "--configfile", REPRODUCE).stdout
    counts = job_counts(out)
    # the eleven: seeds 1..3 at the paper's rate; gaussder, riesz: both rates x seeds 1..3
    assert counts["train"] == 11 * 3 + 2 * 2 * 3
    assert counts["select_lr"] == 13  # one record each, from the paper or from selection
    runs = _listed_runs(out)
    new = {r for r in runs if "/gaussder/" in r or "/riesz/" in r}
    assert new == {
        f"results/runs/emoji/{m}/eval2/lr{lr}"
        for m in ("gaussder", "riesz")
        for lr in ("0.01", "0.001")
    }
    # the paper chose 1e-3 for every one of its models on emoji Mid2Rest
    paper = runs - new
    assert len(paper) == 11
    assert all(r.endswith("/eval2/lr0.001") for r in paper), sorted(paper)


def _config(workdir, **changes):
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(changes)
    path = workdir / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _listed_runs(output):
    """Run directories (without the seed) of the trainings a dry run lists."""
    return set(re.findall(r"(results/runs/[^\s,]+)/seed\d+/metrics\.json", output))


def test_paper_rates_for_some_models_keep_the_selection_of_the_others(workdir):
    cfg = _config(workdir, paper_lr_models=["pixel_pool", "slice_pool"])
    out = snakemake(workdir, "-n", "--cores", "1", "--configfile", cfg).stdout
    counts = job_counts(out)
    assert counts["select_lr"] == 8  # one record per configuration, whatever its source
    runs = _listed_runs(out)
    # standard and ensemble: both rates (selection) for both evaluations
    for model in ("standard", "ensemble"):
        assert {r for r in runs if f"/{model}/" in r} == {
            f"results/runs/emoji/{model}/eval{e}/lr{lr}" for e in (2, 4) for lr in ("0.01", "0.001")
        }
    # pixel_pool, slice_pool: only the paper's rate (paper_runs_summary.csv: 1e-3, except
    # 1e-2 for pixel_pool on All2All), all listed before any selection has run
    paper = {r for r in runs if "/pixel_pool/" in r or "/slice_pool/" in r}
    assert paper == {
        "results/runs/emoji/pixel_pool/eval2/lr0.001",
        "results/runs/emoji/pixel_pool/eval4/lr0.01",
        "results/runs/emoji/slice_pool/eval2/lr0.001",
        "results/runs/emoji/slice_pool/eval4/lr0.001",
    }


def test_model_without_paper_rate_fails_naming_the_key(workdir):
    (workdir / "my_models.py").write_text(
        "from torch import nn\nfrom scalecnn.models import register_model\n\n"
        "@register_model('my_net')\ndef build(kernel_size, interpolation, num_channels, "
        "num_classes, **extra):\n    return nn.Flatten()\n"
    )
    cfg = _config(
        workdir, models=["standard", "my_net"], plugins=["my_models.py"], paper_lr_models="all"
    )
    proc = snakemake(workdir, "-n", "--cores", "1", "--configfile", cfg, check=False)
    assert proc.returncode != 0
    assert "paper_lr_models" in proc.stderr + proc.stdout
    assert "emoji/my_net/eval2" in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------- faked results
# Our test accuracies per model (seeds 1..3) of a tiny faked emoji Mid2Rest study; the paper's
# means (paper_runs_summary.csv): standard 39.109 ± 3.667, pixel_pool 76.613 ± 3.86, xu
# 40.274 ± 3.861 (50 runs each).
# None: a run stopped by a non-finite loss (status nonfinite, no test accuracy).
FAKE_ACCS = {
    "standard": [37.0, 39.0, 41.0],
    "pixel_pool": [20.0, 22.0, 24.0],
    "xu": [40.0, None, None],
}


def fake_study(workdir, accs=FAKE_ACCS):
    """A config with the paper's rates and the files its trainings would have written (data
    first, so that nothing is older than its input). Returns the config path."""
    import json

    cfg = yaml.safe_load(REPRODUCE.read_text())
    cfg.update(
        models=list(accs),
        datasets={"emoji": {"source": "generate", "repetitions": max(map(len, accs.values()))}},
        equivariance={**cfg["equivariance"], "models": []},
        indices={**cfg["indices"], "models": []},
    )
    path = workdir / "fake.yaml"
    path.write_text(yaml.safe_dump(cfg))
    data = workdir / "results" / "data" / "emoji.npz"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"x")
    for model, values in accs.items():
        for seed, acc in enumerate(values, 1):
            run = workdir / f"results/runs/emoji/{model}/eval2/lr0.001/seed{seed}"
            run.mkdir(parents=True)
            for name in ("history.csv", "model.pt", "predictions.npy"):
                (run / name).write_text("x")
            metrics = {
                "params": {
                    "data_name": "emoji",
                    "model": model,
                    "evaluation": 2,
                    "lr": 0.001,
                    "seed": seed,
                    "kernel_size": 7,
                    "interpolation": "bicubic",
                },
                "status": "ok" if acc is not None else "nonfinite",
                "best_val_acc": 100.0,
                "test_acc": acc,
                "test_loss": 1.0,
                "epochs": 20,
                "best_epoch": 10,
                "train_time_last_epoch": 3.0,
                "train_time_mean": 3.0,
            }
            (run / "metrics.json").write_text(json.dumps(metrics))
            sizes = ",".join(f"s{size}" for size in range(17, 65))
            values = ",".join(["0.5"] * 48)
            (run / "generalization.csv").write_text(
                f"model,data,eval,lr,seed,{sizes}\n{model},emoji,2,0.001,{seed},{values}\n"
            )
    return path


def test_verdict_rule_on_a_faked_result_set(workdir):
    import pandas as pd

    cfg = fake_study(workdir)
    targets = [
        "results/reproduction/emoji_eval2.csv",
        "results/tables/selection.csv",
        "results/tables/compare_paper.csv",
    ]
    proc = snakemake(workdir, "--cores", "1", *targets, "--configfile", cfg)
    counts = job_counts(proc.stdout + proc.stderr)
    assert "train" not in counts  # the faked runs are taken as they are
    assert counts["verdict"] == 1
    assert counts["select_lr"] == 3  # records of the paper's rate
    table = pd.read_csv(workdir / "results/reproduction/emoji_eval2.csv")
    assert table["model"].tolist() == ["standard", "pixel_pool", "xu"]
    row = table.set_index("model")
    assert row.at["standard", "ours_mean"] == 39.0
    assert row.at["standard", "ours_std"] == 2.0
    assert row.at["standard", "diff"] == pytest.approx(39.0 - 39.109)
    assert row.to_dict("index")["standard"]["verdict"] == "consistent"
    assert row.at["pixel_pool", "verdict"] == "differs"
    assert row.at["xu", "verdict"] == "insufficient"
    runs = pd.read_csv(workdir / "results/reproduction/emoji_eval2_runs.csv")
    assert len(runs) == 9
    assert runs["status"].tolist().count("nonfinite") == 2
    assert set(runs["train_seconds"]) == {60.0}  # 20 epochs × 3 s
    for suffix in (".png", ".pdf"):
        assert (workdir / f"results/reproduction/emoji_eval2{suffix}").stat().st_size > 1000
    compare = pd.read_csv(workdir / "results/tables/compare_paper.csv")
    assert set(compare["protocol"]) == {"the paper's protocol, 3 seeds (paper: 50)"}
    selection = pd.read_csv(workdir / "results/tables/selection.csv")
    assert selection["lr_source"].tolist() == ["paper"] * 3
    assert selection["chosen_lr"].tolist() == [0.001] * 3


def _benchmark(workdir, rel, seconds):
    path = workdir / "results" / "benchmarks" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t1.0\n")


def test_record_on_a_faked_result_set(workdir):
    import pandas as pd

    cfg = fake_study(workdir)
    # two trainings of the study and one of another configuration (not counted)
    _benchmark(workdir, "train/emoji/standard/eval2/lr0.001/seed1.tsv", 100.0)
    _benchmark(workdir, "train/emoji/xu/eval2/lr0.001/seed1.tsv", 50.0)
    _benchmark(workdir, "train/emoji/xu/eval2/lr0.01/seed1.tsv", 1000.0)
    notes = "Xu et al.: *hand-written* explanation.\n"
    (workdir / "docs").mkdir()
    (workdir / "docs" / "reproduction_notes.md").write_text(notes)

    # the record is no part of rule all
    dry = snakemake(workdir, "-n", "--cores", "1", "--configfile", cfg).stdout
    assert "rule record" not in dry and "docs/reproduction.md" not in dry

    proc = snakemake(workdir, "--cores", "1", "record", "--configfile", cfg)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["record"] == 1 and "train" not in counts
    docs = workdir / "docs"
    for name in ("emoji_eval2.csv", "emoji_eval2_runs.csv", "emoji_eval2.png"):
        assert (docs / "reproduction" / name).stat().st_size > 100, name
    assert (docs / "reproduction" / "compare_paper_generalization.png").stat().st_size > 1000
    pd.testing.assert_frame_equal(
        pd.read_csv(docs / "reproduction" / "emoji_eval2.csv"),
        pd.read_csv(workdir / "results/reproduction/emoji_eval2.csv"),
    )
    assert not list(docs.rglob(".*.tmp*"))  # no temporary files left
    md = (docs / "reproduction.md").read_text()
    assert "Do not edit by hand" in md
    assert "git commit: `" in md
    assert "fake.yaml" in md
    assert "torch threads per training: 1" in md
    # time per rule family: train = 100 s + 50 s over 2 jobs (the lr0.01 run is not ours)
    assert "| train | 2 | 2 min 30 s | 1 min 15 s | 1 min 40 s |" in md
    assert "Protocol: **the paper's protocol, 3 seeds (paper: 50)**" in md
    assert "| Standard | 3 | 39.00 | 2.00 | 39.11 | 3.67 | 50 | -0.11 |" in md
    assert "1 of 2 model(s) tested are consistent" in md
    assert "Pixel pool differs: ours 22.00 % vs the paper's 76.61 % (-54.61 pp, below" in md
    assert "Too few ok seeds for the test: Xu et al. (1 ok seed(s))" in md
    assert "](reproduction/emoji_eval2.png)" in md
    assert "](reproduction/compare_paper_generalization.png)" in md
    assert md.rstrip().endswith(notes.rstrip())
