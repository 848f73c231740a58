"""Faked finished runs in the format the training and the evaluations write
(docs/formats.md), for the MLflow sync tests (tests/test_tracking.py,
tests/workflow/test_mlflow.py) and the torch-free tables and figures
(tests/test_torch_free.py). Needs no torch."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from scalecnn.aggregate import write_table
from scalecnn.study import ALL_SIZES, EQUIVARIANCE_PAIRS, format_lr, run_dir

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
    commit: str | None = None,
) -> Path:
    """A finished run folder in the format the training writes (docs/formats.md);
    ``commit`` as the training records it (``None``: a run older than that key)."""
    run = results / run_dir(data, model, evaluation, lr, seed)
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
    if commit is not None:
        metrics["commit"] = commit
    history.to_csv(run / "history.csv", index=False)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (run / "model.pt").write_bytes(rng.bytes(256))
    np.save(run / "predictions.npy", rng.integers(0, 36, 50))
    (run / ".checkpoint.pt").write_bytes(b"in-progress state, never synced")
    return run


def fake_evaluations(run: Path, status: str = "ok", classes: int = 3) -> None:
    """The run's ``generalization.csv`` and ``equivariance.npz`` (NaN where not ok)."""
    p = json.loads((run / "metrics.json").read_text())["params"]
    ok = status == "ok"
    rng = np.random.default_rng(zlib.crc32(str(run).encode()))
    row = {"model": p["model"], "data": p["data_name"], "eval": p["evaluation"]}
    row |= {"lr": p["lr"], "seed": p["seed"]}
    row |= {f"s{s}": (0.3 + 0.5 * rng.random()) if ok else np.nan for s in ALL_SIZES}
    pd.DataFrame([row]).to_csv(run / "generalization.csv", index=False)
    shape = (classes, 1, len(EQUIVARIANCE_PAIRS))
    err = rng.random(shape) if ok else np.full(shape, np.nan)
    np.savez(
        run / "equivariance.npz",
        stage1=err,
        stage2=err / 2,
        pairs=np.array(EQUIVARIANCE_PAIRS),
        input_scale=np.array("unit"),
    )


def fake_selection(
    results: Path,
    model: str,
    chosen: float,
    source: str = "selection",
    data: str = "emoji",
    evaluation: int = 2,
) -> Path:
    """The selection record of (data, model, evaluation) choosing ``chosen``."""
    record = results / f"selection/{data}/{model}/eval{evaluation}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    measured = source == "selection"
    record.write_text(
        json.dumps(
            {
                "data": data,
                "model": model,
                "evaluation": evaluation,
                "medians": {format_lr(chosen): 50.0} if measured else {},
                "seeds_per_lr": {format_lr(chosen): 1} if measured else {},
                "chosen_lr": chosen,
                "source": source,
            }
        )
    )
    return record


def fake_results(res: Path) -> Path:
    """A small faked result set under ``res``: standard's selection (two rates, seed 1;
    0.001 chosen) and its second seed, hermite at the paper's rate (0.001) with two seeds (one
    non-finite), and the runs.csv the workflow would write from the reported runs."""
    fake_run(res, "standard", 0.01, 1, epochs=3)
    fake_run(res, "standard", 0.001, 1, epochs=5)
    fake_run(res, "standard", 0.001, 2, epochs=6, commit="c0ffee")
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
