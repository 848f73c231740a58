"""The ``scalecnn disco-basis`` job: optimise, mix, save, and report the DISCO basis.

:func:`write_disco_basis` is what the command runs (its argument parsing lives in
:mod:`scalecnn.cli`): it logs the loss of every epoch, writes the final (and
optionally the raw) basis and, if asked, a JSON report of equivariance errors and
cost.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from scalecnn.atomic import write_json
from scalecnn.bases.disco.basis import mix_basis
from scalecnn.bases.disco.compare import VALIDATION_SEED, compare_bases
from scalecnn.bases.disco.fit import PAPER_IMAGE_SIZE, optimise_disco_basis
from scalecnn.bases.files import save_basis

__all__ = ["write_disco_basis"]

logger = logging.getLogger(__name__)


def write_disco_basis(
    out: str | os.PathLike,
    *,
    kernel_size: int,
    effective_size: int,
    scales: Sequence[float],
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    image_size: int,
    lr: float,
    init_std: float,
    seed: int,
    raw_out: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    validation_images: int = 16,
) -> dict[str, Any] | None:
    """Optimise the raw basis, mix it and write the final ``(F, S, K, K)`` basis to ``out``.

    The settings are those of
    :func:`~scalecnn.bases.disco.fit.optimise_disco_basis`. ``raw_out``: also write
    the raw (unmixed) basis there. ``report``: write a JSON report there (the
    settings, seconds, per-epoch losses and
    :func:`~scalecnn.bases.disco.compare.compare_bases` on ``validation_images``
    held-out images) and return it; without ``report`` returns ``None``.
    """
    scales = list(scales)
    started = time.perf_counter()
    history: list[float] = []

    def log_epoch(epoch: int, num_epochs: int, loss: float) -> None:
        history.append(loss)
        logger.info(
            "epoch %d/%d loss %.6e (%.1f s)", epoch, num_epochs, loss, time.perf_counter() - started
        )

    logger.info(
        "optimising the DISCO basis: K=%d E=%d scales=%s, %d epochs x %d steps, batch %d, "
        "images %dx%d, lr %g, init std %g, seed %d, %d threads",
        kernel_size,
        effective_size,
        scales,
        epochs,
        steps_per_epoch,
        batch_size,
        image_size,
        image_size,
        lr,
        init_std,
        seed,
        torch.get_num_threads(),
    )
    raw = optimise_disco_basis(
        kernel_size=kernel_size,
        effective_size=effective_size,
        scales=scales,
        epochs=epochs,
        batch_size=batch_size,
        image_size=image_size,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        seed=seed,
        progress=log_epoch,
        init_std=init_std,
    )
    final = mix_basis(raw)
    seconds = time.perf_counter() - started
    save_basis(out, final)
    if raw_out is not None:
        save_basis(raw_out, raw)
    logger.info("wrote %s %s (%.1f s)", out, tuple(final.shape), seconds)
    if report is None:
        return None
    errors = compare_bases(
        final,
        scales,
        kernel_size,
        effective_size,
        seed,
        raw=raw,
        num_images=validation_images,
        init_std=init_std,
    )
    content = {
        "basis": str(Path(out)),
        "shape": list(final.shape),
        "settings": {
            "kernel_size": kernel_size,
            "effective_size": effective_size,
            "scales": scales,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "batch_size": batch_size,
            "image_size": image_size,
            "lr": lr,
            "init_std": init_std,
            "seed": seed,
            "threads": torch.get_num_threads(),
        },
        "seconds": round(seconds, 3),
        "loss_history": history,
        "equivariance_error": errors,
        "validation": {
            "measure": "relative: sum over scale pairs of ||lhs - rhs|| / sum of "
            "rms(||lhs||, ||rhs||)",
            "num_images": validation_images,
            "image_size": PAPER_IMAGE_SIZE,
            "seed": VALIDATION_SEED,
        },
    }
    write_json(report, content)
    logger.info("equivariance errors: %s", ", ".join(f"{k} {v:.4f}" for k, v in errors.items()))
    return content
