"""One epoch of ``scalecnn.training`` split into its parts (steps, validation, checkpoint …)."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def bench_epoch(args: argparse.Namespace) -> dict:
    """One epoch of ``scalecnn.training`` split into its parts, with the module's own
    functions in ``train_run``'s order: the sample order, ``train_epoch`` (the steps),
    ``evaluate_split`` on the validation split, ``record_epoch`` (best-state copy and
    history row) and ``save_checkpoint``. Data: emoji-like Mid2Rest (a synthetic STIR
    file with emoji's 36 classes and 1 instance: 576 training images, 36 steps at batch
    16) unless ``--epoch-data``. The first epoch is a warm-up and not reported."""
    import tempfile

    from scalecnn import training as tr
    from scalecnn.data import write_synthetic_stir

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="scalecnn_epoch_") as tmp:
        tmp = Path(tmp)
        data = args.epoch_data
        t0 = time.perf_counter()
        if data is None:
            data = write_synthetic_stir(tmp / "emoji_like.npz", num_classes=36, num_instances=1)
        write_s = time.perf_counter() - t0
        cfg = tr.RunConfig(model=args.epoch_model, data=str(data), evaluation=2, device=args.device)
        t0 = time.perf_counter()
        splits, channels, classes = tr.load_splits(cfg.data, cfg.evaluation, device)
        load_s = time.perf_counter() - t0
        tr.seed_everything(cfg.seed)
        model = tr.build_run_model(cfg, channels, classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        state = tr.TrainState()
        train = splits["train"]
        parts = ("order", "train_epoch", "validation", "record_epoch", "checkpoint")
        times: dict[str, list[float]] = {k: [] for k in parts}
        ckpt = tmp / tr.CHECKPOINT_NAME
        for epoch in range(1, args.epoch_epochs + 2):
            lap: dict[str, float] = {}
            t = time.perf_counter()
            order = tr.batch_order(len(train), epoch, cfg)
            lap["order"] = time.perf_counter() - t
            t = time.perf_counter()
            loss, acc = tr.train_epoch(model, optimizer, train, cfg.batch_size, order)
            lap["train_epoch"] = time.perf_counter() - t
            t = time.perf_counter()
            val_loss, val_acc, _ = tr.evaluate_split(model, splits["valid"], tr.EVAL_BATCH_SIZE)
            lap["validation"] = time.perf_counter() - t
            t = time.perf_counter()
            row = (epoch, loss, acc, lap["train_epoch"], val_loss, val_acc)
            tr.record_epoch(state, model, row)
            lap["record_epoch"] = time.perf_counter() - t
            t = time.perf_counter()
            tr.save_checkpoint(ckpt, model, optimizer, state, cfg)
            lap["checkpoint"] = time.perf_counter() - t
            if epoch > 1:  # epoch 1 warms up
                for k in parts:
                    times[k].append(lap[k])
        ckpt_bytes = ckpt.stat().st_size
        # inside train_epoch: the batch slicing alone and the loss/accuracy sums alone
        slicing = _time_slicing(train, cfg.batch_size)
        sums = _time_epoch_sums(model, train, cfg.batch_size)
    med = {k: statistics.median(v) for k, v in times.items()}
    med["slicing (in train_epoch)"] = slicing
    med["loss/acc sums (in train_epoch)"] = sums
    med["steps (train_epoch - slicing - sums)"] = med["train_epoch"] - slicing - sums
    epoch_s = sum(med[k] for k in parts)
    steps = -(-len(train) // cfg.batch_size)
    print(
        f"\n== one epoch of scalecnn.training: {cfg.model}, {len(train)} training / "
        f"{len(splits['valid'])} validation images ({steps} steps at batch {cfg.batch_size}), "
        f"median of {args.epoch_epochs} epochs after a warm-up =="
    )
    for k, v in med.items():
        indent = "  " if k not in parts else ""
        print(f"{indent + k:<40} {v:8.4f} s {100 * v / epoch_s:6.1f} %")
    print(f"{'epoch (sum of the parts)':<40} {epoch_s:8.4f} s")
    print(
        f"once per run: load_splits {load_s:.2f} s (synthetic file written in {write_s:.1f} s); "
        f"checkpoint {ckpt_bytes / 1e3:.0f} kB"
    )
    return {
        "model": cfg.model,
        "data": "synthetic emoji-like" if args.epoch_data is None else str(args.epoch_data),
        "train_images": len(train),
        "valid_images": len(splits["valid"]),
        "steps_per_epoch": steps,
        "epochs_timed": args.epoch_epochs,
        "parts_s": med,
        "epoch_s": epoch_s,
        "load_splits_s": load_s,
        "checkpoint_bytes": ckpt_bytes,
    }


def _time_slicing(data, batch_size: int, repeats: int = 20) -> float:
    """Seconds per epoch of ``train_epoch``'s batch slicing alone (fixed order)."""
    t = time.perf_counter()
    for _ in range(repeats):
        for start in range(0, len(data), batch_size):
            data.images[start : start + batch_size]
            data.labels[start : start + batch_size]
    return (time.perf_counter() - t) / repeats


def _time_epoch_sums(model, data, batch_size: int, repeats: int = 20) -> float:
    """Seconds per epoch of ``train_epoch``'s per-batch loss and accuracy sums alone."""
    with torch.no_grad():
        logits = model(data.images[:batch_size])
    y = data.labels[:batch_size]
    loss = F.cross_entropy(logits, y)
    t = time.perf_counter()
    for _ in range(repeats):
        total = torch.zeros((), dtype=torch.float64, device=y.device)
        correct = torch.zeros((), dtype=torch.int64, device=y.device)
        for _ in range(0, len(data), batch_size):
            total += loss.detach().double() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
        total.item(), correct.item()
    return (time.perf_counter() - t) / repeats
