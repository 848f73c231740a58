"""scalecnn.study is the one source of the study's facts: the config schema, the quick
config and the modules that derive from it agree with it, and it imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scalecnn import study

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
QUICK = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
PROPS = SCHEMA["properties"]


# --------------------------------------------------------------------------- the schema
@pytest.mark.parametrize(
    ("where", "enum", "expected"),
    [
        ("datasets (keys)", PROPS["datasets"]["propertyNames"]["enum"], study.DATASET_NAMES),
        ("evaluations", PROPS["evaluations"]["items"]["enum"], study.EVALUATIONS),
        ("interpolation", PROPS["interpolation"]["enum"], study.INTERPOLATION_MODES),
        (
            "equivariance.datasets",
            PROPS["equivariance"]["properties"]["datasets"]["items"]["enum"],
            study.DATASET_NAMES,
        ),
        (
            "equivariance.input_scale",
            PROPS["equivariance"]["properties"]["input_scale"]["enum"],
            tuple(study.INPUT_SCALES),
        ),
        ("indices.data", PROPS["indices"]["properties"]["data"]["enum"], study.DATASET_NAMES),
        (
            "indices.evaluation",
            PROPS["indices"]["properties"]["evaluation"]["enum"],
            study.EVALUATIONS,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_schema_enums_are_the_study_facts(where, enum, expected):
    assert tuple(enum) == tuple(expected), (
        f"workflow/schemas/config.schema.yaml, {where}: {enum} differs from scalecnn.study "
        f"({list(expected)})"
    )


def test_schema_knows_the_generated_datasets():
    sources = PROPS["datasets"]["additionalProperties"]["properties"]["source"]["enum"]
    assert "generate" in sources and set(study.GENERATED_DATASETS) <= set(study.DATASET_NAMES)


# --------------------------------------------------------------------------- the quick config
def test_quick_config_uses_the_quick_disco_settings():
    disco = QUICK["disco"]
    assert {k: disco[k] for k in study.QUICK_DISCO} == study.QUICK_DISCO
    assert tuple(float(s) for s in disco["scales"]) == study.DISCO_SCALES


def test_quick_config_names_only_study_facts():
    assert set(QUICK["datasets"]) <= set(study.DATASET_NAMES)
    assert set(QUICK["evaluations"]) <= set(study.EVALUATIONS)
    assert QUICK["interpolation"] in study.INTERPOLATION_MODES
    assert set(QUICK["models"]) <= set(study.PAPER_MODELS)


# --------------------------------------------------------------------------- the facts
def test_evaluations_sizes_and_pairs_fit_together():
    sizes = tuple(range(17, 65))
    assert sizes == study.ALL_SIZES and len(sizes) == 48
    assert set(study.EVALUATION_NAMES) == set(study.TRAIN_SIZE_RANGES) == set(study.PAIR_SUBSETS)
    for e in study.EVALUATIONS:
        train, test = study.split_sizes(e)
        assert set(train) <= set(study.ALL_SIZES) and set(test) <= set(study.ALL_SIZES)
        if e == 4:
            assert train == test == study.ALL_SIZES
        else:
            assert sorted(train + test) == list(study.ALL_SIZES)
    assert study.split_sizes(2) == (
        tuple(range(33, 49)),
        tuple(range(17, 33)) + tuple(range(49, 65)),
    )
    assert {s for pair in study.EQUIVARIANCE_PAIRS for s in pair} == set(study.EQUIVARIANCE_SIZES)
    assert all(max(idx) < len(study.EQUIVARIANCE_PAIRS) for idx in study.PAIR_SUBSETS.values())


def test_models_and_datasets():
    assert len(study.PAPER_MODELS) == len(set(study.PAPER_MODELS)) == 11
    assert study.DATASET_NAMES == ("emoji", "mnist", "trafficsign", "aerial")
    assert study.DATASETS["emoji"] == (36, 1, 1)


def test_learning_rate_text_and_run_folder():
    assert [study.format_lr(v) for v in (0.01, 1e-3, "0.0010", 1e-5)] == [
        "0.01",
        "0.001",
        "0.001",
        "1e-05",
    ]
    assert study.run_dir("emoji", "standard", "2", 0.001, 1) == (
        "runs/emoji/standard/eval2/lr0.001/seed1"
    )


def test_derived_modules_use_the_study_facts():
    from scalecnn.data import DATASETS, SCENARIOS
    from scalecnn.plots import style

    assert DATASETS is study.DATASETS
    assert {e: s.name for e, s in SCENARIOS.items()} == study.EVALUATION_NAMES
    assert all((s.train_sizes, s.test_sizes) == study.split_sizes(e) for e, s in SCENARIOS.items())
    assert style.model_order(reversed(study.STUDY_MODELS)) == list(study.STUDY_MODELS)
    assert style.data_order(reversed(study.DATASET_NAMES)) == list(study.DATASET_NAMES)
    assert [style.eval_name(e) for e in study.EVALUATIONS] == list(study.EVALUATION_NAMES.values())
    assert set(style.MODEL_LABELS) == set(style.MODEL_COLORS) == set(study.STUDY_MODELS)
    assert set(style.DATASET_LABELS) == set(style.DATASET_COLORS) == set(study.DATASET_NAMES)


def test_paper_results_cover_the_study():
    from scalecnn.plots.paper import load_paper_summary

    summary = load_paper_summary()
    assert set(summary["model"]) == set(study.PAPER_MODELS)
    assert set(summary["data"]) == set(study.DATASET_NAMES)
    assert set(summary["evaluation"]) == set(study.EVALUATIONS)


def test_study_imports_nothing_heavy():
    code = (
        "import sys, scalecnn.study; "
        "heavy = {'numpy', 'torch', 'pandas', 'matplotlib'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
