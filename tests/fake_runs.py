"""Faked finished runs in the format the training writes (docs/formats.md), for the MLflow
sync tests (tests/test_tracking.py, tests/workflow/test_mlflow.py)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from scalecnn.aggregate import write_table

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "train_time", "val_loss", "val_acc")
REPORTED = (("standard", "0.001"), ("hermite", "0.001"))


def fake_run(
    results: Path,
    model: str,
    lr: float,
    seed: int,
    epochs: int = 4,
    status: str = "ok",
    data: str = "emoji",
    evaluation: int = 2,
) -> Path:
    """A finished run folder in the format the training writes (docs/formats.md)."""
    run = results / f"runs/{data}/{model}/eval{evaluation}/lr{lr:g}/seed{seed}"
    run.mkdir(parents=True)
    rng = np.random.default_rng(zlib.crc32(f"{model}{lr}{seed}".encode()))
    epoch = np.arange(1, epochs + 1)
    history = pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": 3.6 / epoch + rng.random(epochs) * 0.01,
            "train_acc": 100 - 90 / epoch,
            "train_time": 2.0 + rng.random(epochs),
            "val_loss": 3.7 / epoch + rng.random(epochs) * 0.01,
            "val_acc": 100 - 95 / epoch - rng.random(epochs),
        }
    )
    if status == "nonfinite":
        history.loc[epochs - 1, "train_loss"] = np.nan
    best = int(history["val_acc"].idxmax())
    metrics = {
        "params": {
            "model": model,
            "data": f"results/data/{data}.npz",
            "evaluation": evaluation,
            "kernel_size": 7,
            "interpolation": "bicubic",
            "lr": lr,
            "seed": seed,
            "batch_size": 16,
            "max_epochs": 60,
            "patience": 10,
            "reshuffle": False,
            "device": "cpu",
            "basis": None,
            "plugins": [],
            "data_name": data,
        },
        "status": status,
        "message": "" if status == "ok" else f"epoch {epochs}: non-finite loss",
        "best_val_acc": float(history["val_acc"][best]),
        "test_acc": None if status != "ok" else 40.0 + seed + 100 * lr,
        "test_loss": None if status != "ok" else 2.0 - seed / 10,
        "best_epoch": int(history["epoch"][best]),
        "epochs": epochs,
        "train_time_last_epoch": float(history["train_time"].iloc[-1]),
        "train_time_mean": float(history["train_time"].mean()),
        "num_parameters": 1234,
        "history": {c: history[c].tolist() for c in HISTORY_COLUMNS},
    }
    history.to_csv(run / "history.csv", index=False)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (run / "model.pt").write_bytes(rng.bytes(256))
    np.save(run / "predictions.npy", rng.integers(0, 36, 50))
    (run / ".checkpoint.pt").write_bytes(b"in-progress state, never synced")
    return run


def fake_selection(results: Path, model: str, chosen: float, source: str = "selection") -> None:
    record = results / f"selection/emoji/{model}/eval2.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        json.dumps(
            {
                "data": "emoji",
                "model": model,
                "evaluation": 2,
                "chosen_lr": chosen,
                "source": source,
            }
        )
    )


def fake_results(res: Path) -> Path:
    """A small faked result set under ``res``: standard's selection (two rates, seed 1;
    0.001 chosen) and its second seed, hermite at the paper's rate (0.001) with two seeds (one
    non-finite), and the runs.csv the workflow would write from the reported runs."""
    fake_run(res, "standard", 0.01, 1, epochs=3)
    fake_run(res, "standard", 0.001, 1, epochs=5)
    fake_run(res, "standard", 0.001, 2, epochs=6)
    fake_run(res, "hermite", 0.001, 1, epochs=4)
    fake_run(res, "hermite", 0.001, 2, epochs=2, status="nonfinite")
    fake_selection(res, "standard", 0.001)
    fake_selection(res, "hermite", 0.001, source="paper")
    reported = [
        res / f"runs/emoji/{m}/eval2/lr{lr}/seed{s}/metrics.json"
        for m, lr in REPORTED
        for s in (1, 2)
    ]
    write_table("runs", reported, res / "tables/runs.csv")
    return res
