"""The disco model in the workflow: its basis is computed by rule disco_basis, then it trains."""

import json

import pandas as pd
import pytest
from wfutil import snakemake, tiny_study


@pytest.mark.slow
def test_disco_basis_is_built_from_nothing_and_the_model_trains(tmp_path):
    cfg = tiny_study(tmp_path, models=["disco"], max_epochs=1)
    snakemake(tmp_path, "results/tables/runs.csv", "--cores", "2", "--configfile", cfg)
    report = json.loads((tmp_path / "results/bases/disco_basis_report.json").read_text())
    err = report["equivariance_error"]
    assert err["disco"] < err["hermite_b"] < err["random"]  # as in the DISCO paper
    runs = pd.read_csv(tmp_path / "results/tables/runs.csv")
    assert runs["model"].tolist() == ["disco"]
    assert runs["status"].tolist() == ["ok"]
