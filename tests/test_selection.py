"""Learning rates taken from the paper (config key paper_lr_models)."""

import json

import pandas as pd
import pytest

from scalecnn.aggregate import selection_table
from scalecnn.selection import (
    paper_lr_models,
    paper_lrs,
    paper_selection_record,
    write_paper_selection,
)

MODELS = ["standard", "pixel_pool", "disco"]


def test_paper_lr_models_all_and_list_keep_the_config_order():
    assert paper_lr_models("all", MODELS) == MODELS
    assert paper_lr_models(["disco", "standard"], MODELS) == ["standard", "disco"]
    assert paper_lr_models([], MODELS) == []
    assert paper_lr_models(None, MODELS) == []
    # a registered model the study does not train (e.g. --config models=[...]) is ignored
    assert paper_lr_models(["hermite", "disco"], MODELS) == ["disco"]


@pytest.mark.parametrize("value", [["resnet"], "some"])
def test_paper_lr_models_errors_name_the_key(value):
    with pytest.raises(ValueError, match="paper_lr_models"):
        paper_lr_models(value, MODELS)


def test_paper_lrs_reads_the_packaged_table():
    # rows of paper_runs_summary.csv: emoji/standard/2 -> 0.001
    assert paper_lrs([("emoji", "standard", 2)]) == {("emoji", "standard", 2): 0.001}


def test_paper_lrs_uses_the_given_summary_and_names_missing_configurations():
    summary = pd.DataFrame(
        {"data": ["emoji", "emoji"], "model": ["standard", "xu"], "evaluation": [2, 4]}
    ).assign(lr=[0.01, 0.001])
    assert paper_lrs([("emoji", "standard", "2")], summary) == {("emoji", "standard", 2): 0.01}
    with pytest.raises(ValueError, match=r"paper_lr_models.*emoji/my_net/eval2"):
        paper_lrs([("emoji", "standard", 2), ("emoji", "my_net", 2)], summary)


def test_paper_record_goes_into_the_selection_table(tmp_path):
    record = write_paper_selection("emoji", "standard", 2, tmp_path / "sel.json")
    assert record == paper_selection_record("emoji", "standard", 2, 0.001)
    stored = json.loads((tmp_path / "sel.json").read_text())
    assert stored["source"] == "paper"
    assert stored["chosen_lr"] == 0.001
    assert stored["medians"] == {}
    table = selection_table([tmp_path / "sel.json"])
    assert table.loc[0, "chosen_lr"] == 0.001
    assert table.loc[0, "lr_source"] == "paper"
