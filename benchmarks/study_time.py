"""The emoji reproduction's time from every model's epoch cost (``--study-time``).

Per model: one training epoch (``train_epoch``: 36 steps at batch 16 on emoji
Mid2Rest's 576 training images) and one validation pass (``evaluate_split`` on its 576
validation images), both after a warm-up epoch, with the training module's own
functions. Multiplied by the epochs each run of a record took
(``docs/reproduction/emoji_eval2_runs.csv`` by default), they give each model's
CPU-seconds and its longest run; the study's wall time on ``--study-cores`` cores,
one single-threaded job per core, is at least ``max(total / cores, longest run)``
(a bound: two jobs side by side also share the memory bandwidth, which stretches
each by about a quarter on the 2-core AVX2 machine). The validation share shows what
the forward alone costs: each epoch runs the model forward on 576 validation and 576
training images, so the forward passes are a floor that no faster backward lowers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from subjects import basis_kwargs

RECORD = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "emoji_eval2_runs.csv"


def _epoch_costs(
    name: str, splits: dict, channels: int, classes: int, args: argparse.Namespace
) -> dict:
    """Seconds of one training epoch and one validation pass of model ``name`` on the
    loaded ``splits``, measured after a warm-up epoch."""
    from scalecnn import training as tr
    from scalecnn.models import build_model

    extra, _ = basis_kwargs(name, args.disco_basis)
    tr.seed_everything(1)
    model = build_model(
        name,
        kernel_size=7,
        interpolation="bicubic",
        num_channels=channels,
        num_classes=classes,
        **extra,
    ).to(torch.device(args.device))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # the first pass warms up; the second is kept
        t = time.perf_counter()
        tr.train_epoch(model, optimizer, splits["train"], 16)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        tr.evaluate_split(model, splits["valid"], tr.EVAL_BATCH_SIZE)
        valid_s = time.perf_counter() - t
    return {"train_epoch_s": train_s, "validation_s": valid_s, "epoch_s": train_s + valid_s}


def _record_epochs(path: Path, models: list[str]) -> dict[str, list[int]]:
    """Epochs of each run of each model in a record's runs table."""
    import pandas as pd

    runs = pd.read_csv(path)
    missing = sorted(set(models) - set(runs["model"]))
    if missing:
        raise SystemExit(f"--study-record {path} has no runs of {missing}")
    return {m: [int(e) for e in runs.loc[runs["model"] == m, "epochs"]] for m in models}


def bench_study_time(args: argparse.Namespace) -> dict:
    """Epoch costs of ``args.study_models`` and the reproduction's time they imply."""
    from scalecnn.data import write_synthetic_stir
    from scalecnn.training import load_splits

    epochs = _record_epochs(args.study_record, args.study_models)
    with tempfile.TemporaryDirectory(prefix="scalecnn_study_") as tmp:
        data = args.study_data
        if data is None:
            data = write_synthetic_stir(
                Path(tmp) / "emoji_like.npz", num_classes=36, num_instances=1
            )
        print(
            f"\n== the reproduction's time from epoch costs: one training epoch + one "
            f"validation pass per model ({data}), times the epochs of {args.study_record} =="
        )
        header = (
            f"{'model':<18} {'train s':>8} {'valid s':>8} {'epoch s':>8} {'epochs':>7} "
            f"{'model s':>9} {'longest s':>10} {'valid %':>8}"
        )
        print(header)
        # the data once for every model (Mid2Rest: evaluation 2)
        splits, channels, classes = load_splits(str(data), 2, torch.device(args.device))
        rows = []
        for name in args.study_models:
            cost = _epoch_costs(name, splits, channels, classes, args)
            runs = epochs[name]
            row = {
                "model": name,
                **cost,
                "epochs": runs,
                "model_s": cost["epoch_s"] * sum(runs),
                "longest_run_s": cost["epoch_s"] * max(runs),
            }
            rows.append(row)
            print(
                f"{name:<18} {cost['train_epoch_s']:8.1f} {cost['validation_s']:8.1f} "
                f"{cost['epoch_s']:8.1f} {sum(runs):7d} {row['model_s']:9.0f} "
                f"{row['longest_run_s']:10.0f} "
                f"{100 * cost['validation_s'] / cost['epoch_s']:7.0f}%",
                flush=True,
            )
    total = sum(r["model_s"] for r in rows)
    forward = sum(2 * r["validation_s"] * sum(r["epochs"]) for r in rows)
    longest = max(r["longest_run_s"] for r in rows)
    wall = max(total / args.study_cores, longest)
    print(
        f"total {total:,.0f} CPU-s ({len(rows)} models); on {args.study_cores} cores at best "
        f"{wall:,.0f} s = {wall / 3600:.2f} h (longest run {longest:,.0f} s); the forward "
        f"passes alone (validation and training images) ≈ {forward:,.0f} CPU-s = "
        f"{forward / args.study_cores / 3600:.2f} h on {args.study_cores} cores"
    )
    return {
        "data": str(args.study_data or "synthetic emoji-like"),
        "record": str(args.study_record),
        "cores": args.study_cores,
        "models": rows,
        "total_cpu_s": total,
        "forward_cpu_s": forward,
        "longest_run_s": longest,
        "wall_bound_s": wall,
    }
