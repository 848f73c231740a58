"""The README's main command: the offline quick study end to end."""

import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from wfutil import REPO, snakemake

QUICK = REPO / "config" / "quick.yaml"
SIZES = [f"s{s}" for s in range(17, 65)]


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path):
    cfg = yaml.safe_load(QUICK.read_text())
    start = time.perf_counter()
    snakemake(tmp_path, "--cores", "2", "--configfile", QUICK, timeout=3600)
    # the quick study's time, in CI's log (a measurement, not an assertion)
    print(f"\nquick study: {time.perf_counter() - start:.0f} s wall time on --cores 2")
    tables = tmp_path / "results" / "tables"
    models, evals = cfg["models"], cfg["evaluations"]
    seeds = cfg["datasets"]["emoji"]["repetitions"]
    own = cfg.get("model_repetitions", {})
    per_model = {m: own.get(m, seeds) for m in models}

    runs = pd.read_csv(tables / "runs.csv")
    assert runs.groupby("model").size().to_dict() == {
        m: n * len(evals) for m, n in per_model.items()
    }
    assert set(runs["model"]) == set(models) and set(runs["evaluation"]) == set(evals)
    ok = runs[runs["status"] == "ok"]
    assert ok["test_acc"].between(0, 100).all() and ok["best_val_acc"].between(0, 100).all()
    assert {"params.model", "metrics.test_acc"} <= set(runs.columns)

    # the paper's finding on emoji Mid2Rest (paper: standard 39.1 %, ensemble 66.5 %,
    # hermite 68.8 %): the baseline near the paper's, the generalising models far above it
    mean = ok[ok["evaluation"] == 2].groupby("model")["test_acc"].mean()
    assert abs(mean["standard"] - 39.1) <= 10, mean.to_dict()
    for model in ("ensemble", "hermite"):
        assert mean[model] >= mean["standard"] + 15, mean.to_dict()
    # the models of the finding trained to early stopping, not to the epoch cap
    finding = runs[runs["model"].isin(["standard", "ensemble", "hermite"])]
    assert (finding["epochs"] < cfg["max_epochs"]).all(), finding[["model", "seed", "epochs"]]

    sel = pd.read_csv(tables / "selection.csv")
    assert len(sel) == len(models) * len(evals)
    assert set(sel["chosen_lr"]) <= set(cfg["learning_rates"])
    # every reported run uses its configuration's chosen rate
    merged = runs.merge(sel, on=["data", "model", "evaluation"])
    assert np.allclose(merged["lr"], merged["chosen_lr"])

    gen = pd.read_csv(tables / "generalization_emoji.csv")
    assert list(gen.columns[:5]) == ["model", "data", "eval", "lr", "seed"]
    assert list(gen.columns[5:]) == SIZES
    assert len(gen) == len(runs)
    assert gen[SIZES].stack().between(0, 1).all()

    eq = pd.read_csv(tables / "equivariance.csv")
    eq_models = [m for m in models if m in cfg["equivariance"]["models"]]
    assert len(eq) == sum(per_model[m] for m in eq_models) * len(evals)
    assert (eq["stage2_error"] >= 0).all()

    for model in cfg["indices"]["models"]:
        with np.load(tmp_path / f"results/indices/emoji/{model}/eval2/best.npz") as z:
            assert z["pool2"].shape[0] == 48 * 36

    figures = sorted((tmp_path / "results" / "figures").glob("*.pdf"))
    assert len(figures) >= 8
    assert all(f.stat().st_size > 1000 for f in figures)
    assert (tables / "table2_train_time.tex").is_file()
    assert (tables / "compare_paper.md").is_file()

    # the report holds every figure and table with its caption and the producing config
    snakemake(tmp_path, "--configfile", QUICK, "--report", "report.zip")
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
        html = "\n".join(z.read(n).decode("utf-8", "replace") for n in names if "html" in n)
    for fig in figures:
        assert any(n.endswith(fig.with_suffix(".png").name) for n in names), fig.name
    assert any(n.endswith("table2_train_time.tex") for n in names)
    assert "Fig. 6 of the paper for dataset" in html
    assert f"at most {cfg['max_epochs']} epoch(s)" in html
