"""A user's own model: one plugin module, one config line, and it is in every table."""

import pandas as pd
from wfutil import snakemake, tiny_study

PLUGIN = """
from torch import nn
from scalecnn.models import register_model

@register_model("my_net")
def build_my_net(kernel_size, interpolation, num_channels, num_classes, **extra):
    return nn.Sequential(nn.Conv2d(num_channels, 8, kernel_size), nn.ReLU(),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
"""


def test_user_model_runs_through_the_workflow(tmp_path):
    (tmp_path / "my_models.py").write_text(PLUGIN)
    cfg = tiny_study(
        tmp_path, models=["standard", "my_net"], plugins=["my_models.py"], max_epochs=1
    )
    snakemake(tmp_path, "--cores", "2", "--configfile", cfg)
    runs = pd.read_csv(tmp_path / "results/tables/runs.csv")
    assert sorted(runs["model"]) == ["my_net", "standard"]
    assert runs["test_acc"].between(0, 100).all()
    gen = pd.read_csv(tmp_path / "results/tables/generalization_emoji.csv")
    assert sorted(gen["model"]) == ["my_net", "standard"]
    assert gen[[f"s{s}" for s in range(17, 65)]].stack().between(0, 1).all()
    sel = pd.read_csv(tmp_path / "results/tables/selection.csv")
    assert sorted(sel["model"]) == ["my_net", "standard"]
