"""The three metrics and the tables built from them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from scalecnn.aggregate import best_run, runs_table, selection_table, summarize_equivariance
from scalecnn.data import STIRDataset
from scalecnn.evaluation import (
    crop_to_object,
    equivariance_errors,
    known_test_correctness,
    relative_error,
    scale_generalization,
    scale_indices,
)
from scalecnn.models import build_model
from scalecnn.selection import select_from_runs
from scalecnn.study import EQUIVARIANCE_PAIRS, PAIR_SUBSETS


class AlwaysClass(nn.Module):
    """Predicts one class for every image."""

    def __init__(self, cls, num_classes):
        super().__init__()
        self.cls, self.num_classes = cls, num_classes

    def forward(self, x):
        out = torch.zeros(x.shape[0], self.num_classes)
        out[:, self.cls] = 1
        return out


class ConstantMaps(nn.Module):
    """Stage maps of the standard model's sizes filled with one value: every crop is constant."""

    def feature_maps(self, x):
        b = x.shape[0]
        return torch.full((b, 2, 58, 58), 3.0), torch.full((b, 2, 52, 52), 5.0)


def test_generalization_of_a_constant_predictor_is_the_class_share(tiny_stir):
    ds = STIRDataset(tiny_stir)  # 3 classes, 2 instances, balanced at every size
    acc = scale_generalization(AlwaysClass(1, 3), ds, torch.device("cpu"))
    assert acc.shape == (48,)
    assert np.allclose(acc, 1 / 3)


def _run_with_predictions(run_dir, evaluation, predictions):
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"params": {"evaluation": evaluation}}))
    np.save(run_dir / "predictions.npy", predictions)
    return run_dir


def test_generalization_reuses_the_runs_test_predictions(tiny_stir, tmp_path):
    """Mid2Rest: predictions right exactly on even sizes → 1.0 / 0.0 on the test sizes.

    The run's predictions are in the training loader's shuffled order; only the
    middle sizes 33..48 (not in its test split) go through the model.
    """
    ds = STIRDataset(tiny_stir)  # 3 classes
    test_sizes = list(range(17, 33)) + list(range(49, 65))
    labels = ds.get_labels("test", test_sizes, shuffle=True)
    sizes, _ = ds.get_latents("test", test_sizes, shuffle=True)
    pred = np.where(sizes % 2 == 0, labels, (labels + 1) % 3)
    run = _run_with_predictions(tmp_path / "run", 2, pred)
    known = known_test_correctness(run, ds)
    assert sorted(known) == test_sizes
    acc = scale_generalization(AlwaysClass(1, 3), ds, torch.device("cpu"), known)
    for size, a in zip(range(17, 65), acc):
        expected = 1 / 3 if 33 <= size <= 48 else float(size % 2 == 0)
        assert a == pytest.approx(expected), size


def test_unusable_predictions_are_not_reused(tiny_stir, tmp_path):
    ds = STIRDataset(tiny_stir)
    n = len(ds.get_labels("test", list(range(17, 65))))
    assert (
        known_test_correctness(_run_with_predictions(tmp_path / "a", 4, np.full(n, -1)), ds) == {}
    )
    assert (
        known_test_correctness(_run_with_predictions(tmp_path / "b", 4, np.zeros(n - 1)), ds) == {}
    )
    (tmp_path / "c").mkdir()
    assert known_test_correctness(tmp_path / "c", ds) == {}


def test_crop_to_object_matches_the_documented_indices():
    fmap = torch.arange(52 * 52, dtype=torch.float32).reshape(1, 52, 52)
    # p = 64 − 52 = 12; object at x = 5 (left), y = 7 (top), size 20 → rows 7:15, cols 5:13
    crop = crop_to_object(fmap, (5, 7), 20)
    assert crop.shape == (1, 8, 8)
    assert crop[0, 0, 0].item() == 7 * 52 + 5


def test_relative_error_hand_values():
    ref = torch.ones(1, 4, 4)
    assert relative_error(ref, ref) == pytest.approx(0.0)
    assert relative_error(ref, torch.zeros(1, 4, 4)) == pytest.approx(1.0)
    assert relative_error(ref, 3 * torch.ones(1, 2, 2)) == pytest.approx(4.0)  # (1−3)²/1²
    # an all-zero reference (a stage dead on that object): undefined, not infinite
    assert np.isnan(relative_error(torch.zeros(1, 4, 4), ref))
    assert np.isnan(relative_error(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)))


def test_equivariance_error_is_zero_for_constant_maps(tiny_stir):
    errors = equivariance_errors(ConstantMaps(), STIRDataset(tiny_stir), torch.device("cpu"))
    assert errors["stage1"].shape == (3, 2, 6) and errors["stage2"].shape == (3, 2, 6)
    assert np.allclose(errors["stage1"], 0) and np.allclose(errors["stage2"], 0)


def test_equivariance_error_of_a_real_model_is_finite_and_positive(tiny_stir):
    torch.manual_seed(0)
    errors = equivariance_errors(
        build_model("standard", num_classes=3), STIRDataset(tiny_stir), torch.device("cpu")
    )
    assert np.all(np.isfinite(errors["stage1"])) and np.all(errors["stage1"] > 0)


def test_pair_subsets_follow_the_paper():
    names = {e: [EQUIVARIANCE_PAIRS[i] for i in idx] for e, idx in PAIR_SUBSETS.items()}
    assert names[1] == [(48, 33), (33, 48), (32, 17), (17, 32)]
    assert names[2] == [(64, 49), (49, 64), (32, 17), (17, 32)]
    assert names[3] == [(64, 49), (49, 64), (48, 33), (33, 48)]
    errors = np.arange(6, dtype=float).reshape(1, 1, 6)
    assert summarize_equivariance(errors, 2) == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert summarize_equivariance(errors, 4) == pytest.approx(2.5)
    # undefined pairs are left out of the mean; all undefined: NaN
    errors[0, 0, 1] = np.nan
    assert summarize_equivariance(errors, 2) == pytest.approx((0 + 4 + 5) / 3)
    assert np.isnan(summarize_equivariance(np.full((1, 1, 6), np.nan), 2))


def test_scale_indices_shapes_and_order(tmp_path):
    from scalecnn.data import write_synthetic_stir

    torch.manual_seed(0)
    ds = STIRDataset(write_synthetic_stir(tmp_path / "s.npz", num_classes=3, num_instances=1))
    out = scale_indices(build_model("pixel_pool", num_classes=3), ds, torch.device("cpu"))
    n = 48 * 3
    assert out["pool1"].shape == (n, 16, 58, 58) and out["pool1"].dtype == np.uint8
    assert out["pool2"].shape == (n, 32, 52, 52)
    assert out["pool1"].max() < 29 and out["pool2"].max() < 26
    assert list(out["sizes"][::3]) == list(range(17, 65))  # sizes ascending, then class, instance
    slice_out = scale_indices(build_model("slice_pool", num_classes=3), ds, torch.device("cpu"))
    assert slice_out["pool1"].shape == (n, 16) and slice_out["pool2"].shape == (n, 32)
    with pytest.raises(ValueError, match="pool1"):
        scale_indices(build_model("standard", num_classes=3), ds, torch.device("cpu"))


def _metrics(tmp_path, name, lr, seed, val, test=50.0, status="ok"):
    m = {
        "params": {
            "data_name": "emoji",
            "model": "standard",
            "evaluation": 2,
            "lr": lr,
            "seed": seed,
            "kernel_size": 7,
            "interpolation": "bicubic",
        },
        "status": status,
        "best_val_acc": val,
        "test_acc": test,
        "test_loss": 1.0,
        "epochs": 3,
        "best_epoch": 2,
        "train_time_last_epoch": 0.5,
        "train_time_mean": 0.4,
    }
    path = tmp_path / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m))
    return path


def test_runs_table_has_paper_and_mlflow_columns(tmp_path):
    files = [_metrics(tmp_path, "b", 0.001, 2, 70.0), _metrics(tmp_path, "a", 0.001, 1, 60.0)]
    table = runs_table(files)
    assert table["seed"].tolist() == [1, 2]
    assert table["params.model"].tolist() == ["standard", "standard"]
    assert table["metrics.test_acc"].tolist() == [50.0, 50.0]
    assert {"status", "best_val_acc", "train_time_last_epoch"} <= set(table.columns)


def test_selection_record_and_table(tmp_path):
    files = [
        _metrics(tmp_path, f"r{lr}{s}", lr, s, val)
        for lr, vals in ((0.01, (80, 90, 10)), (0.001, (70, 85, 95)))
        for s, val in enumerate(vals, 1)
    ]
    record = select_from_runs(files)
    assert record["medians"] == {"0.01": 80.0, "0.001": 85.0}
    assert record["chosen_lr"] == 0.001
    path = tmp_path / "sel.json"
    path.write_text(json.dumps(record))
    table = selection_table([path])
    assert table.loc[0, "chosen_lr"] == 0.001
    assert isinstance(table, pd.DataFrame) and table.loc[0, "median_val_acc_0.01"] == 80.0


def test_best_run_is_the_ok_run_with_the_highest_test_accuracy(tmp_path):
    files = [
        _metrics(tmp_path / "a", "metrics", 0.001, 1, 60.0, test=50.0),
        _metrics(tmp_path / "b", "metrics", 0.001, 2, 60.0, test=70.0),
        _metrics(tmp_path / "c", "metrics", 0.001, 3, 60.0, test=90.0, status="nonfinite"),
        _metrics(tmp_path / "d", "metrics", 0.001, 4, 60.0, test=70.0),  # tie: first wins
    ]
    assert best_run(files) == tmp_path / "b"
    with pytest.raises(ValueError, match="no completed run"):
        best_run(files[2:3])


def test_the_evaluate_command_offers_every_metric():
    from scalecnn.cli import EVALUATE_METRICS
    from scalecnn.evaluation import METRICS

    assert sorted(EVALUATE_METRICS) == sorted(METRICS)
