"""Figures and tables of the paper as targets: their DAGs, the skipped artefacts, the glue
that builds their frames from per-run files, and (slow) the report on a tiny real run."""

import json
import re

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from wfutil import REPO, job_counts, snakemake

QUICK = REPO / "tests" / "workflow" / "dag_config.yaml"  # the earlier quick study
FIGURE_RULES = {
    "fig4_accuracy",
    "suppl_fig1_accuracy_boxes",
    "fig5_generalization",
    "suppl_fig2_generalization",
    "fig6_equivariance",
    "suppl_fig3_equivariance",
    "fig7_slice_indices",
    "suppl_fig4_pixel_indices",
    "table2_train_time",
    "compare_paper",
    "compare_paper_scatter",
    "compare_paper_generalization",
}


def _dry(workdir, *targets, configfile=QUICK, check=True):
    # targets before --configfile, which takes several values
    return snakemake(
        workdir, "-n", "--cores", "1", *targets, "--configfile", configfile, check=check
    )


def _run_configs(output: str) -> set[tuple[str, int]]:
    """(model, evaluation) of every run directory the dry run mentions."""
    return {(m, int(e)) for m, e in re.findall(r"results/runs/emoji/(\w+)/eval(\d)/", output)}


def _skips(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("figures: skipping")]


# --------------------------------------------------------------------------- DAG per target
def test_fig6_builds_only_the_emoji_mid2rest_runs_of_the_equivariance_models(workdir):
    proc = _dry(workdir, "results/figures/fig6_equivariance_emoji.pdf")
    counts = job_counts(proc.stdout)
    # standard, pixel_pool, slice_pool (ensemble: no equivariance; energy_pool, kanazawa:
    # not in the quick config) × Mid2Rest × 2 rates × 1 selection seed
    assert counts == {
        "prepare_data": 1,
        "train": 6,
        "select_lr": 3,
        "fig6_equivariance": 1,
        "total": 11,
    }
    configs = _run_configs(proc.stdout)
    assert configs == {("standard", 2), ("pixel_pool", 2), ("slice_pool", 2)}
    assert "ensemble" not in proc.stdout
    assert "eval4" not in proc.stdout
    assert "results/tables/runs.csv" not in proc.stdout
    # the quick config lacks the paper's Fig. 5 dataset: one line, no error
    skips = _skips(proc.stderr)
    assert len(skips) == 1, proc.stderr
    assert "Fig. 5 for mnist" in skips[0]
    assert "fig5_generalization_mnist" in skips[0]
    assert "'datasets' has none of [mnist]" in skips[0]


def test_fig7_builds_only_the_slice_pool_mid2rest_runs(workdir):
    proc = _dry(workdir, "results/figures/fig7_slice_indices.png")
    counts = job_counts(proc.stdout)
    assert counts["train"] == 2  # 2 rates × 1 selection seed
    assert counts["select_lr"] == 1
    assert counts["best_run_indices"] == 1
    assert counts["fig7_slice_indices"] == 1
    assert _run_configs(proc.stdout) == {("slice_pool", 2)}
    for absent in ("pixel_pool", "standard", "ensemble", "eval4", "equivariance"):
        assert absent not in proc.stdout, absent


def test_table2_needs_only_the_mid2rest_runs(workdir):
    table2 = _dry(workdir, "results/tables/table2_train_time.tex").stdout
    assert job_counts(table2)["train"] == 8  # 4 models × Mid2Rest × 2 rates × 1 seed
    assert {e for _, e in _run_configs(table2)} == {2}
    assert "generalization" not in table2


def test_quick_config_builds_every_figure_and_table(workdir):
    proc = _dry(workdir)
    counts = job_counts(proc.stdout)
    assert set(counts) >= FIGURE_RULES, FIGURE_RULES - set(counts)
    assert all(counts[r] == 1 for r in FIGURE_RULES)
    # selection trainings unchanged by the figures: 4 models × 2 evals × 2 rates × 2 seeds
    assert counts["train"] == 16
    assert len(_skips(proc.stderr)) == 1


def test_artefacts_the_config_lacks_are_skipped_with_a_message(workdir):
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(models=["standard", "ensemble"], evaluations=[4])
    config = workdir / "lacking.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = _dry(workdir / "wd", configfile=config)
    counts = job_counts(proc.stdout)
    skips = "\n".join(_skips(proc.stderr))
    expected = {
        "Fig. 5 for emoji": "'evaluations' has none of [1, 2, 3] (it has [4])",
        "Fig. 5 for mnist": "'datasets' has none of [mnist]",
        "Fig. 6 for emoji": "'evaluations' has none of [2]",
        "Fig. 7 ": "'models' has none of [slice_pool]",
        "Suppl. Fig. 4 ": "'models' has none of [pixel_pool]",
        "Table 2 ": "'evaluations' has none of [2]",
    }
    for label, reason in expected.items():
        line = next((s for s in skips.splitlines() if f"skipping {label}" in s), None)
        assert line is not None, f"no skip line for {label}:\n{skips}"
        assert reason in line, line
    assert len(skips.splitlines()) == len(expected), skips
    for rule in ("fig5_generalization", "fig6_equivariance", "fig7_slice_indices"):
        assert rule not in counts
    for rule in ("fig4_accuracy", "suppl_fig1_accuracy_boxes", "suppl_fig3_equivariance"):
        assert counts[rule] == 1


def test_asking_for_a_skipped_artefact_names_what_is_missing(workdir):
    proc = _dry(workdir, "results/figures/fig5_generalization_mnist.pdf", check=False)
    assert proc.returncode != 0
    assert "Fig. 5 for mnist cannot be built with this config" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------- per-run glue
def _fake_run(root, model, evaluation, seed, *, status="ok", test_acc=50.0, lr=0.001):
    run = root / f"runs/emoji/{model}/eval{evaluation}/lr{lr:g}/seed{seed}"
    run.mkdir(parents=True)
    params = {
        "model": model,
        "data_name": "emoji",
        "evaluation": evaluation,
        "kernel_size": 7,
        "interpolation": "bicubic",
        "lr": lr,
        "seed": seed,
    }
    metrics = {
        "params": params,
        "status": status,
        "best_val_acc": 60.0,
        "test_acc": test_acc,
        "test_loss": 1.0,
        "best_epoch": 1,
        "epochs": 1,
        "train_time_last_epoch": 2.0 + seed,
        "train_time_mean": 2.0,
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    sizes = {f"s{s}": (0.5 if status == "ok" else np.nan) for s in range(17, 65)}
    row = {"model": model, "data": "emoji", "eval": evaluation, "lr": lr, "seed": seed, **sizes}
    pd.DataFrame([row]).to_csv(run / "generalization.csv", index=False)
    err = np.full((3, 1, 6), 0.1 if status == "ok" else np.nan)
    np.savez(run / "equivariance.npz", stage1=err, stage2=err, pairs=np.zeros((6, 2), int))
    return run


def _fake_selection(root, model, evaluation, lr=0.001):
    path = root / f"selection/emoji/{model}/eval{evaluation}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "data": "emoji",
        "model": model,
        "evaluation": evaluation,
        "medians": {"0.01": 10.0, "0.001": 20.0},
        "seeds_per_lr": {"0.01": 2, "0.001": 2},
        "chosen_lr": lr,
    }
    path.write_text(json.dumps(record))
    return path


def _texts(fig: Figure) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title()] + [t.get_text() for t in ax.texts]
    return "\n".join(parts)


def test_frames_and_figures_from_per_run_files(tmp_path):
    from scalecnn.plots.inputs import figure_from_files, load_frames

    runs = [_fake_run(tmp_path, m, 2, s) for m in ("standard", "pixel_pool") for s in (1, 2)]
    sel = [_fake_selection(tmp_path, m, 2) for m in ("standard", "pixel_pool")]
    files = {
        "metrics": [r / "metrics.json" for r in runs],
        "selection": sel,
        "generalization": [r / "generalization.csv" for r in runs],
        "equivariance": [r / "equivariance.npz" for r in runs],
    }
    frames = load_frames(**files)
    assert len(frames.runs) == len(frames.generalization) == len(frames.equivariance) == 4
    assert set(frames.selection["chosen_lr"]) == {0.001}
    for kind in ("fig4", "suppl_fig1", "suppl_fig2", "suppl_fig3", "compare_generalization"):
        fig = figure_from_files(kind, **files)
        assert "not drawn" not in _texts(fig), kind
    for kind in ("fig5", "fig6"):
        assert "not drawn" not in _texts(figure_from_files(kind, data="emoji", **files))


def test_all_runs_excluded_gives_a_placeholder_not_an_error(tmp_path, caplog):
    from scalecnn.plots.inputs import figure_from_files, write_table2_files

    runs = [
        _fake_run(tmp_path, "standard", 2, s, status="nonfinite", test_acc=float("nan"))
        for s in (1, 2)
    ]
    metrics = [r / "metrics.json" for r in runs]
    fig = figure_from_files(
        "fig6",
        metrics=metrics,
        equivariance=[r / "equivariance.npz" for r in runs],
        selection=[_fake_selection(tmp_path, "standard", 2)],
        data="emoji",
    )
    text = _texts(fig)
    assert "not drawn" in text and "excluded" in text
    assert any("placeholder" in r.getMessage() for r in caplog.records)
    fig4 = figure_from_files("fig4", metrics=metrics)
    assert "not drawn" in _texts(fig4)
    csv, tex = tmp_path / "t2.csv", tmp_path / "t2.tex"
    assert write_table2_files(metrics, csv, tex) is None
    assert "not available" in csv.read_text() and "not available" in tex.read_text()


# --------------------------------------------------------------------------- tiny real run
