"""config/reproduce_emoji.yaml: the paper's protocol and learning rates on one machine."""

import re

import yaml
from wfutil import REPO, job_counts, snakemake

REPRODUCE = REPO / "config" / "reproduce_emoji.yaml"
QUICK = REPO / "config" / "quick.yaml"


def test_reproduce_config_trains_the_paper_rates_without_selection(workdir):
    out = snakemake(workdir, "-n", "--cores", "2", "--configfile", REPRODUCE).stdout
    counts = job_counts(out)
    assert counts["train"] == 11 * 3  # 11 models × seeds 1..3, no selection trainings
    assert counts["select_lr"] == 11  # each writes the record with the paper's rate
    # the paper chose 1e-3 for every model on emoji Mid2Rest
    runs = _listed_runs(out)
    assert len(runs) == 11
    assert all(r.endswith("/eval2/lr0.001") for r in runs), sorted(runs)


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
    # pixel_pool, slice_pool: only the paper's rate (1e-3 on emoji); those the indices
    # figures need are listed before any selection has run
    paper = {r for r in runs if "/pixel_pool/" in r or "/slice_pool/" in r}
    assert paper >= {
        "results/runs/emoji/pixel_pool/eval2/lr0.001",
        "results/runs/emoji/slice_pool/eval2/lr0.001",
    }
    assert all(r.endswith("/lr0.001") for r in paper), sorted(paper)


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
