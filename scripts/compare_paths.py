"""Train one run's first epochs twice — fast paths and direct definitions — side by side.

A diagnostic for "is a slow or odd training run a property of this implementation or
of the model?": both trainings start from the same seed, weights and batches; only the
computation path of the layers differs (``SiConv2d``, the FFT convolutions of conv3d,
Xu, hermite and disco are forced to ``method="direct"`` in one of them). Per epoch it
prints the training loss and validation accuracy of both and the largest parameter
difference. Float32 rounding differs between the paths (~10⁻⁶ relative per layer),
so trajectories are expected to agree closely for the first epochs and may drift
apart later, as two runs on different hardware would.

    python scripts/compare_paths.py --model pixel_pool --data results/data/emoji.npz \\
        --evaluation 2 --seed 1 --epochs 3 --out results/diagnostics/pixel_pool_seed1.csv
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
from pathlib import Path

import pandas as pd
import torch

from scalecnn.device import resolve_device, set_threads, tune_allocator
from scalecnn.training import (
    EVAL_BATCH_SIZE,
    RunConfig,
    batch_order,
    build_run_model,
    evaluate_split,
    load_splits,
    seed_everything,
    train_epoch,
)

log = logging.getLogger("compare_paths")


def force_direct(model: torch.nn.Module) -> int:
    """Set every layer with a ``method`` choice to ``direct``; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(getattr(module, "method", None), str):
            module.method = "direct"
            count += 1
    return count


def compare(cfg: RunConfig, epochs: int) -> pd.DataFrame:
    """Per-epoch loss, validation accuracy and parameter difference of both paths."""
    device = resolve_device(cfg.device)
    splits, channels, classes = load_splits(cfg.data, cfg.evaluation, device)
    seed_everything(cfg.seed)
    fast = build_run_model(cfg, channels, classes).to(device)
    direct = copy.deepcopy(fast)
    forced = force_direct(direct)
    if forced == 0:
        raise ValueError(f"model {cfg.model!r} has no layer with a fast path to compare")
    optimizers = {
        name: torch.optim.Adam(model.parameters(), lr=cfg.lr)
        for name, model in (("fast", fast), ("direct", direct))
    }
    rows = []
    for epoch in range(1, epochs + 1):
        row: dict[str, float] = {"epoch": epoch}
        for name, model in (("fast", fast), ("direct", direct)):
            order = batch_order(len(splits["train"]), epoch, cfg)
            loss, _ = train_epoch(model, optimizers[name], splits["train"], cfg.batch_size, order)
            _, val_acc, _ = evaluate_split(model, splits["valid"], EVAL_BATCH_SIZE)
            row[f"{name}_train_loss"], row[f"{name}_val_acc"] = loss, val_acc
        row["max_param_diff"] = max(
            (a - b).abs().max().item()
            for a, b in zip(fast.parameters(), direct.parameters(), strict=True)
        )
        log.info("epoch %d: %s", epoch, {k: round(v, 6) for k, v in row.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, type=Path, help="STIR .npz file")
    p.add_argument("--evaluation", type=int, default=2, help="1-4 (2: Mid2Rest)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--basis", default=None, help="basis file (disco)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=None, help="CSV of the per-epoch comparison")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads(args.threads)
    tune_allocator()
    cfg = RunConfig(
        model=args.model,
        data=str(args.data),
        evaluation=args.evaluation,
        lr=args.lr,
        seed=args.seed,
        basis=args.basis,
        device=args.device,
    )
    cfg.validate()
    table = compare(cfg, args.epochs)
    print(table.to_string(index=False))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
