"""Optimising the raw DISCO basis on random-noise images (the paper's procedure).

Optimisation follows the paper: 8-bit uniform noise images 154×154, batches
of 64, Adam at 1e-3 for 40 epochs with the rate divided by 10 at epochs 20
and 30 (here at ``epochs/2`` and ``3·epochs/4``), free kernels initialised
``N(0, 1)``, the basis of the epoch with the lowest mean loss is kept. One
difference: the paper drew its batches from a fixed pool of 10 000 noise
images (``torchvision.datasets.FakeData``), reshuffled every epoch; here every
step draws fresh noise (the images are i.i.d. noise either way, so an epoch
is simply ``steps_per_epoch`` steps; the default 157 = ⌈10 000 / 64⌉).
Costs and a cheap setting: ``docs/disco_basis.md``.

>>> raw = optimise_disco_basis(epochs=2, steps_per_epoch=4, batch_size=4,
...                            image_size=64, lr=0.05)         # doctest: +SKIP
>>> disco_basis(epochs=2, steps_per_epoch=4).shape              # doctest: +SKIP
torch.Size([49, 4, 15, 15])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from scalecnn.bases.disco.basis import (
    DISCO_SCALES,
    EFFECTIVE_SIZE,
    KERNEL_SIZE,
    check_scales,
    check_sizes,
    dilated_delta_basis,
    equivariance_loss,
    is_integer_scale,
    mix_basis,
    noise_images,
)
from scalecnn.study import QUICK_DISCO

__all__ = [
    "LR_GAMMA",
    "PAPER_BATCH_SIZE",
    "PAPER_EPOCHS",
    "PAPER_IMAGE_SIZE",
    "PAPER_LR",
    "PAPER_STEPS_PER_EPOCH",
    "QUICK_SETTINGS",
    "ProgressFn",
    "disco_basis",
    "initial_disco_basis",
    "optimise_disco_basis",
    "seed_generators",
]

PAPER_EPOCHS = 40
PAPER_BATCH_SIZE = 64
PAPER_IMAGE_SIZE = 154
PAPER_STEPS_PER_EPOCH = 157
"""⌈10 000 / 64⌉: the paper's epoch over 10 000 noise images in batches of 64."""
PAPER_LR = 1e-3
LR_GAMMA = 0.1

QUICK_SETTINGS: dict[str, Any] = QUICK_DISCO
"""The cheap setting of the quick configuration (see ``docs/disco_basis.md``): keyword
arguments of :func:`optimise_disco_basis`."""

ProgressFn = Callable[[int, int, float], None]
"""``progress(epoch, num_epochs, mean_loss)``, called after every epoch (1-based)."""


def seed_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Independent generators for the initialisation and for the noise stream of ``seed``."""
    init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    return (
        torch.Generator().manual_seed(int(init_seed) >> 1),
        torch.Generator().manual_seed(int(noise_seed) >> 1),
    )


def initial_disco_basis(
    kernel_size: int = KERNEL_SIZE,
    effective_size: int = EFFECTIVE_SIZE,
    scales: Sequence[float] = DISCO_SCALES,
    seed: int = 0,
    init_std: float = 1.0,
) -> torch.Tensor:
    """The starting point of :func:`optimise_disco_basis` for ``seed``.

    Integer scales hold :func:`~scalecnn.bases.disco.basis.dilated_delta_basis`, the
    others ``N(0, init_std²)`` kernels (the paper: ``N(0, 1)``), drawn in scale order
    from the seed's initialisation generator.

    Returns:
        raw ``(F, S, K, K)`` float32.
    """
    check_sizes(kernel_size, effective_size)
    scales = check_scales(scales, kernel_size, effective_size)
    gen, _ = seed_generators(seed)
    num_funcs = effective_size**2
    per_scale = []
    for s in scales:
        if is_integer_scale(s):
            per_scale.append(dilated_delta_basis(kernel_size, effective_size, s))
        else:
            per_scale.append(
                init_std * torch.randn(num_funcs, kernel_size, kernel_size, generator=gen)
            )
    return torch.stack(per_scale, dim=1)


def _milestones(epochs: int, lr_milestones: Sequence[int] | None) -> list[int]:
    if lr_milestones is not None:
        return sorted(int(m) for m in lr_milestones)
    # the paper: 20 and 30 of 40 epochs
    return sorted({epochs // 2, (3 * epochs) // 4} - {0})


def optimise_disco_basis(
    kernel_size: int = KERNEL_SIZE,
    effective_size: int = EFFECTIVE_SIZE,
    scales: Sequence[float] = DISCO_SCALES,
    epochs: int = PAPER_EPOCHS,
    batch_size: int = PAPER_BATCH_SIZE,
    image_size: int = PAPER_IMAGE_SIZE,
    steps_per_epoch: int = PAPER_STEPS_PER_EPOCH,
    lr: float = PAPER_LR,
    seed: int = 0,
    progress: ProgressFn | None = None,
    lr_milestones: Sequence[int] | None = None,
    init_std: float = 1.0,
) -> torch.Tensor:
    """Optimise the raw DISCO basis on random-noise images (the paper's procedure).

    Adam on the free kernels (integer scales stay dilated deltas) minimising
    :func:`~scalecnn.bases.disco.basis.equivariance_loss` on fresh batches of
    :func:`~scalecnn.bases.disco.basis.noise_images`; the
    rate is multiplied by 0.1 at each of ``lr_milestones`` (default
    ``epochs//2`` and ``3·epochs//4``: 20 and 30 for 40 epochs). Deterministic
    for a seed on a given machine and thread count.

    Args:
        kernel_size: ``K`` (odd).
        effective_size: ``E`` (odd); ``F = E²`` functions per scale.
        scales: ascending, at least one integer.
        epochs: number of epochs.
        batch_size: noise images per step.
        image_size: side of the noise images.
        steps_per_epoch: optimisation steps per epoch.
        lr: initial Adam learning rate.
        seed: seeds the initialisation and the noise.
        progress: ``progress(epoch, epochs, mean_loss)`` after every epoch, where
            ``mean_loss`` is the epoch's mean of loss / (batch · image pixels),
            the paper's printed quantity.
        lr_milestones: epochs after which the rate is divided by 10.
        init_std: std of the free kernels' normal initialisation (paper: 1).

    Returns:
        The raw basis ``(F, S, K, K)`` float32 of the epoch with the lowest
        mean loss (not yet mixed: see
        :func:`~scalecnn.bases.disco.basis.mix_basis`, :func:`disco_basis`).
    """
    check_sizes(kernel_size, effective_size)
    scales = check_scales(scales, kernel_size, effective_size)
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("steps_per_epoch", steps_per_epoch),
        ("image_size", image_size),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    raw = initial_disco_basis(kernel_size, effective_size, scales, seed, init_std)
    _, noise_gen = seed_generators(seed)
    free = [s for s, sigma in enumerate(scales) if not is_integer_scale(sigma)]
    params = [raw[:, s].clone().requires_grad_(True) for s in free]
    fixed = {s: raw[:, s] for s in range(len(scales)) if s not in free}
    if not params:  # every scale is an integer one: nothing to optimise
        return raw

    def per_scale() -> list[torch.Tensor]:
        by_scale = dict(fixed)
        by_scale.update(zip(free, params))
        return [by_scale[s] for s in range(len(scales))]

    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, _milestones(epochs, lr_milestones), gamma=LR_GAMMA
    )
    pixels = batch_size * image_size * image_size
    best_loss, best = math.inf, raw
    for epoch in range(1, epochs + 1):
        losses = []
        for _ in range(steps_per_epoch):
            x = noise_images(batch_size, image_size, noise_gen)
            optimizer.zero_grad(set_to_none=True)
            loss = equivariance_loss(x, per_scale(), scales)
            loss.backward()
            optimizer.step()
            losses.append(loss.item() / pixels)
        scheduler.step()
        mean_loss = float(np.mean(losses))
        if mean_loss < best_loss:
            best_loss = mean_loss
            with torch.no_grad():
                best = torch.stack(per_scale(), dim=1).detach().clone()
        if progress is not None:
            progress(epoch, epochs, mean_loss)
    return best


def disco_basis(**settings: Any) -> torch.Tensor:
    """The final DISCO basis: :func:`optimise_disco_basis` with ``settings`` (its keyword
    arguments), then :func:`~scalecnn.bases.disco.basis.mix_basis`.

    Returns:
        ``(E², S, K, K)`` float32, e.g. ``(49, 4, 15, 15)``: what
        ``build_model("disco", basis=...)`` takes.
    """
    return mix_basis(optimise_disco_basis(**settings))
