"""The DISCO "disco_b" basis (Sosnovik, Moskalev & Smeulders, BMVC 2021).

DISCO replaces SESN's analytic Hermite basis by one optimised for *discrete*
scale equivariance. A raw basis ``ψ`` of shape ``(F, S, K, K)`` holds, for
every scale ``σ_s``, ``F = effective_size²`` kernels:

- an integer scale takes the fixed *dilated-delta* basis: the
  ``effective_size × effective_size`` unit impulses spread with step ``σ``
  around the kernel centre (function ``f = r·E + c`` is the impulse at
  ``(K//2 + (r − E//2)·σ, K//2 + (c − E//2)·σ)``);
- any other scale takes ``F`` free ``K × K`` kernels, optimised so that for
  every pair of scales ``σ_i < σ_j`` (``a = σ_j / σ_i > 1``)

      D_a(x ⋆ ψ_j)  ≈  D_a(x) ⋆ ψ_i,

  where ``⋆`` is the cross-correlation of :func:`torch.nn.functional.conv2d`
  with circular padding (:func:`circular_conv`) and ``D_a`` downscales by
  ``a`` with bicubic interpolation (:func:`downscale`). This is the discrete
  form of ``ψ_j(u) = a⁻² ψ_i(u / a)``: a kernel dilated by ``a`` applied to an
  image responds, after downscaling by ``a``, as the undilated kernel does to
  the downscaled image. Both sides are therefore *downscaled*; the larger
  kernel sees the full-resolution image and the smaller one the downscaled
  image, and no side ever upscales (which would have to invent detail).

The loss of one batch of images is ``Σ_{i<j} ‖D_a(x ⋆ ψ_j) − D_a(x) ⋆ ψ_i‖₂``
over all pairs (:func:`equivariance_loss`), each map cropped by
``K//2 + 1`` pixels on every side to drop the wrapped borders. The integer
scales anchor the solution (without one, ``ψ = 0`` would be optimal).

The raw basis is then mixed by the 49×49 Hermite matrix
(:func:`~scalecnn.bases.hermite.hermite_matrix`: min scale 1.9, mult 1.9,
order 4) and normalised by :func:`~scalecnn.bases.hermite.normalize_basis`
(:func:`mix_basis`), which gives the final basis the ``disco`` model takes.

Optimisation follows the paper: 8-bit uniform noise images 154×154, batches
of 64, Adam at 1e-3 for 40 epochs with the rate divided by 10 at epochs 20
and 30 (here at ``epochs/2`` and ``3·epochs/4``), free kernels initialised
``N(0, 1)``, the basis of the epoch with the lowest mean loss is kept. One
difference: the paper drew its batches from a fixed pool of 10 000 noise
images (``torchvision.datasets.FakeData``), reshuffled every epoch; here every
step draws fresh noise (the images are i.i.d. noise either way, so an epoch
is simply ``steps_per_epoch`` steps; the default 157 = ⌈10 000 / 64⌉).

>>> raw = optimise_disco_basis(epochs=2, steps_per_epoch=4, batch_size=4,
...                            image_size=64, lr=0.05)         # doctest: +SKIP
>>> disco_basis(epochs=2, steps_per_epoch=4).shape              # doctest: +SKIP
torch.Size([49, 4, 15, 15])
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scalecnn.atomic import atomic_path, write_json, write_npy
from scalecnn.bases.hermite import hermite_basis, hermite_matrix, normalize_basis
from scalecnn.signals import abort_on_signals

logger = logging.getLogger(__name__)

KERNEL_SIZE = 15
EFFECTIVE_SIZE = 7
DISCO_SCALES: tuple[float, ...] = (1.0, 1.26, 1.59, 2.0)
"""The paper's DISCO scales (``disco_b`` of the STIR study)."""
PAPER_EPOCHS = 40
PAPER_BATCH_SIZE = 64
PAPER_IMAGE_SIZE = 154
PAPER_STEPS_PER_EPOCH = 157
"""⌈10 000 / 64⌉: the paper's epoch over 10 000 noise images in batches of 64."""
PAPER_LR = 1e-3
LR_GAMMA = 0.1
HERMITE_MIN_SCALE = 1.9
HERMITE_MULT = 1.9
HERMITE_MAX_ORDER = 4
VALIDATION_SEED = 12345
"""Seed of the held-out noise images of :func:`basis_equivariance_error`."""
HERMITE_B_MULT = 1.5
"""Width ratio of the SESN "hermite_b" basis (used for the comparison)."""

# the cheap setting of the quick configuration (see docs/disco_basis.md)
QUICK_SETTINGS: dict[str, Any] = {
    "epochs": 2,
    "steps_per_epoch": 20,
    "batch_size": 4,
    "image_size": 64,
    "lr": 0.01,
    "init_std": 0.01,
}

ProgressFn = Callable[[int, int, float], None]
"""``progress(epoch, num_epochs, mean_loss)``, called after every epoch (1-based)."""


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


def is_integer_scale(scale: float) -> bool:
    """Whether ``scale`` is a positive integer (to 1e-9): such scales use dilated deltas."""
    return scale >= 1 - 1e-9 and abs(scale - round(scale)) < 1e-9


def _check_sizes(kernel_size: int, effective_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    if effective_size < 1 or effective_size % 2 == 0:
        raise ValueError(f"effective_size must be odd and positive, got {effective_size}")
    if effective_size > kernel_size:
        raise ValueError(f"effective_size {effective_size} exceeds kernel_size {kernel_size}")


def _check_scales(scales: Sequence[float], kernel_size: int, effective_size: int) -> list[float]:
    scales = [float(s) for s in scales]
    if not scales:
        raise ValueError("scales must not be empty")
    if any(s <= 0 for s in scales) or any(b <= a for a, b in zip(scales, scales[1:])):
        raise ValueError(f"scales must be positive and strictly ascending, got {scales}")
    if not any(is_integer_scale(s) for s in scales):
        raise ValueError(
            f"scales {scales} contain no integer scale: at least one is needed to anchor the "
            "DISCO basis with dilated deltas (otherwise the zero basis would be optimal)"
        )
    for s in scales:
        extent = (effective_size - 1) * round(s) + 1
        if is_integer_scale(s) and extent > kernel_size:
            raise ValueError(
                f"the dilated-delta basis of scale {s:g} spans {extent} pixels, more than "
                f"kernel_size {kernel_size}"
            )
    return scales


def dilated_delta_basis(
    kernel_size: int = KERNEL_SIZE, effective_size: int = EFFECTIVE_SIZE, scale: float = 1
) -> torch.Tensor:
    """The fixed basis of an integer scale: ``E × E`` unit impulses spaced by ``scale``.

    Function ``f = r·E + c`` (row-major over the ``E × E`` grid, ``E`` the
    effective size) is 1 at ``(K//2 + (r − E//2)·scale, K//2 + (c − E//2)·scale)``
    and 0 elsewhere, so that ``hermite_matrix() @ basis`` places the Hermite
    functions on the dilated grid.

    Returns:
        ``(E², K, K)`` float32.

    Raises:
        ValueError: ``scale`` is not an integer or the grid does not fit in ``K``.
    """
    _check_sizes(kernel_size, effective_size)
    if not is_integer_scale(scale):
        raise ValueError(f"dilated-delta bases exist for integer scales only, got {scale}")
    step = round(scale)
    if (effective_size - 1) * step + 1 > kernel_size:
        raise ValueError(
            f"{effective_size}×{effective_size} deltas with step {step} do not fit in "
            f"{kernel_size}×{kernel_size}"
        )
    pos = kernel_size // 2 + (torch.arange(effective_size) - effective_size // 2) * step
    basis = torch.zeros(effective_size, effective_size, kernel_size, kernel_size)
    idx = torch.arange(effective_size)
    basis[idx[:, None], idx[None, :], pos[:, None], pos[None, :]] = 1.0
    return basis.reshape(effective_size**2, kernel_size, kernel_size)


def _delta_offsets(kernels: torch.Tensor) -> list[tuple[int, int]] | None:
    """Positions of the unit impulses if every kernel is one (and constant), else None."""
    if kernels.requires_grad:
        return None
    flat = kernels.reshape(kernels.shape[0], -1)
    nonzero = flat != 0
    if not bool((nonzero.sum(dim=1) == 1).all()) or not bool((flat[nonzero] == 1).all()):
        return None
    idx = nonzero.to(torch.uint8).argmax(dim=1).tolist()
    k = kernels.shape[-1]
    return [(i // k, i % k) for i in idx]


def circular_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Cross-correlate single-channel images with every kernel, circular padding.

    ``y[b, f, n] = Σ_u x[b, 0, (n + u − K//2) mod H] · kernels[f, u]``, i.e.
    :func:`torch.nn.functional.conv2d` on the circularly padded images. Constant
    unit-impulse kernels (the dilated deltas) are applied as exact shifts.

    Args:
        x: ``(B, 1, H, W)``.
        kernels: ``(F, K, K)`` with odd ``K``.

    Returns:
        ``(B, F, H, W)``.
    """
    pad = kernels.shape[-1] // 2
    padded = F.pad(x, [pad] * 4, mode="circular")
    offsets = _delta_offsets(kernels)
    if offsets is None:
        return F.conv2d(padded, kernels[:, None])
    h, w = x.shape[-2:]
    return torch.cat([padded[:, :, r : r + h, c : c + w] for r, c in offsets], dim=1)


def downscale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale ``(B, C, H, W)`` by ``factor > 1``: bicubic, ``align_corners=False``.

    The output is ``⌊H / factor⌋ × ⌊W / factor⌋``; output pixel ``v`` samples
    the input at ``(v + ½)·factor − ½`` (no antialiasing, as in the paper).
    """
    return F.interpolate(x, scale_factor=1.0 / factor, mode="bicubic", align_corners=False)


def _crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    return x[..., crop:-crop, crop:-crop]


def _per_scale(basis: torch.Tensor | Sequence[torch.Tensor], num_scales: int) -> list[torch.Tensor]:
    """The ``S`` per-scale ``(F, K, K)`` kernels of a basis or of a list of them."""
    expected = f"a basis of shape (F, {num_scales}, K, K) for {num_scales} scales"
    if isinstance(basis, torch.Tensor):
        if basis.dim() != 4 or basis.shape[1] != num_scales:
            raise ValueError(f"expected {expected}, got {tuple(basis.shape)}")
        return list(basis.unbind(1))
    kernels = list(basis)
    shapes = {tuple(k.shape) for k in kernels}
    if len(kernels) != num_scales or len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"expected {expected}, got per-scale kernels of shapes {sorted(shapes)}")
    return kernels


def pair_maps(
    x: torch.Tensor,
    basis: torch.Tensor | Sequence[torch.Tensor],
    scales: Sequence[float],
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Both sides of the equivariance relation for every scale pair ``i < j``.

    Yields ``(i, j, lhs, rhs)`` with ``lhs = D_a(x ⋆ ψ_j)`` (convolve with the
    larger scale, then downscale) and ``rhs = D_a(x) ⋆ ψ_i`` (downscale, then
    convolve with the smaller scale), ``a = σ_j / σ_i``, both ``(B, F, h, w)``
    cropped by ``K//2 + 1`` on every side.

    Args:
        x: ``(B, 1, H, W)`` images.
        basis: ``(F, S, K, K)``, or a sequence of the ``S`` per-scale ``(F, K, K)``
            kernels (so that constant scales need no gradient).
        scales: ascending, ``S`` of them.
    """
    kernels = _per_scale(basis, len(scales))
    crop = kernels[0].shape[-1] // 2 + 1
    full: dict[int, torch.Tensor] = {}
    for j in range(1, len(scales)):
        for i in range(j):
            a = scales[j] / scales[i]
            if j not in full:
                full[j] = circular_conv(x, kernels[j])
            lhs = downscale(full[j], a)
            if min(lhs.shape[-2:]) <= 2 * crop:
                raise ValueError(
                    f"images of {tuple(x.shape[-2:])} downscaled by {a:.3g} leave nothing after "
                    f"cropping {crop} pixels; use larger images"
                )
            rhs = circular_conv(downscale(x, a), kernels[i])
            yield i, j, _crop(lhs, crop), _crop(rhs, crop)


def equivariance_loss(
    x: torch.Tensor,
    basis: torch.Tensor | Sequence[torch.Tensor],
    scales: Sequence[float],
) -> torch.Tensor:
    """The DISCO loss ``Σ_{i<j} ‖D_a(x ⋆ ψ_j) − D_a(x) ⋆ ψ_i‖₂`` (see :func:`pair_maps`)."""
    total = x.new_zeros(())
    for _, _, lhs, rhs in pair_maps(x, basis, scales):
        total = total + (lhs - rhs).norm(2)
    return total


def noise_images(num_images: int, image_size: int, generator: torch.Generator) -> torch.Tensor:
    """8-bit uniform noise images scaled to ``[0, 1]``: ``(N, 1, size, size)`` float32."""
    pixels = torch.randint(
        0, 256, (num_images, 1, image_size, image_size), generator=generator, dtype=torch.uint8
    )
    return pixels.to(torch.float32) / 255.0


def _generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Independent generators for the initialisation and for the noise stream."""
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

    Integer scales hold :func:`dilated_delta_basis`, the others
    ``N(0, init_std²)`` kernels (the paper: ``N(0, 1)``), drawn in scale order
    from the seed's initialisation generator.

    Returns:
        raw ``(F, S, K, K)`` float32.
    """
    _check_sizes(kernel_size, effective_size)
    scales = _check_scales(scales, kernel_size, effective_size)
    gen, _ = _generators(seed)
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


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


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
    :func:`equivariance_loss` on fresh batches of :func:`noise_images`; the
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
        mean loss (not yet mixed: see :func:`mix_basis`, :func:`disco_basis`).
    """
    _check_sizes(kernel_size, effective_size)
    scales = _check_scales(scales, kernel_size, effective_size)
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("steps_per_epoch", steps_per_epoch),
        ("image_size", image_size),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    raw = initial_disco_basis(kernel_size, effective_size, scales, seed, init_std)
    _, noise_gen = _generators(seed)
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


def mix_basis(
    raw: torch.Tensor,
    min_scale: float = HERMITE_MIN_SCALE,
    mult: float = HERMITE_MULT,
    max_order: int = HERMITE_MAX_ORDER,
) -> torch.Tensor:
    """Final "disco_b" basis: mix a raw ``(F, S, K, K)`` basis by the Hermite matrix.

    ``normalize_basis((H @ raw.reshape(F, -1)).reshape(F, S, K, K))`` with
    ``H = hermite_matrix(√F, min_scale, mult, max_order)``.

    Returns:
        ``(F, S, K, K)`` float32; every function has unit L2 norm at scale 0.
    """
    num_funcs = raw.shape[0]
    effective_size = math.isqrt(num_funcs)
    if effective_size**2 != num_funcs:
        raise ValueError(f"the number of functions {num_funcs} is not a square")
    matrix = hermite_matrix(effective_size, min_scale, mult, max_order, dtype=torch.float64)
    mixed = (matrix @ raw.to(torch.float64).reshape(num_funcs, -1)).reshape(raw.shape)
    return normalize_basis(mixed).to(torch.float32)


def disco_basis(
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
    """The final DISCO basis: :func:`optimise_disco_basis`, then :func:`mix_basis`.

    Returns:
        ``(E², S, K, K)`` float32, e.g. ``(49, 4, 15, 15)``: what
        ``build_model("disco", basis=...)`` takes.
    """
    raw = optimise_disco_basis(
        kernel_size,
        effective_size,
        scales,
        epochs,
        batch_size,
        image_size,
        steps_per_epoch,
        lr,
        seed,
        progress,
        lr_milestones,
        init_std,
    )
    return mix_basis(raw)


def random_basis(
    shape: Sequence[int] = (EFFECTIVE_SIZE**2, len(DISCO_SCALES), KERNEL_SIZE, KERNEL_SIZE),
    seed: int = 0,
) -> torch.Tensor:
    """An untrained ``N(0, 1)`` basis of ``shape``, normalised like the others."""
    gen = torch.Generator().manual_seed(seed)
    return normalize_basis(torch.randn(*shape, generator=gen))


@torch.no_grad()
def basis_equivariance_error(
    basis: torch.Tensor,
    scales: Sequence[float] = DISCO_SCALES,
    num_images: int = 16,
    seed: int = VALIDATION_SEED,
    image_size: int = PAPER_IMAGE_SIZE,
    batch_size: int = 4,
    relative: bool = True,
) -> float:
    """The DISCO pairwise measure of a basis on held-out noise images.

    For every pair ``i < j`` the images give ``lhs = D_a(x ⋆ ψ_j)`` and
    ``rhs = D_a(x) ⋆ ψ_i`` (:func:`pair_maps`, all functions, all images).

    Args:
        basis: ``(F, S, K, K)``, raw or final.
        scales: the basis' ``S`` scales.
        num_images: held-out :func:`noise_images`.
        seed: of the held-out images (keep it apart from training seeds).
        image_size: side of the images.
        batch_size: images per forward pass (memory only).
        relative: if true (default), ``Σ_p ‖lhs_p − rhs_p‖ / Σ_p ‖(lhs_p, rhs_p)‖_rms``
            with ``‖(l, r)‖_rms = √((‖l‖² + ‖r‖²)/2)``: scale-free, 0 for an exactly
            equivariant basis and about √2 for unrelated kernels; if false, the
            paper's printed loss ``Σ_p ‖lhs_p − rhs_p‖ / (num_images · image_size²)``.

    Returns:
        The error (lower is more equivariant).
    """
    scales = [float(s) for s in scales]
    basis = basis.detach().to(torch.float32)
    gen = torch.Generator().manual_seed(seed)
    num_pairs = len(scales) * (len(scales) - 1) // 2
    if num_pairs == 0:
        raise ValueError("the equivariance error needs at least two scales")
    diff_sq = torch.zeros(num_pairs, dtype=torch.float64)
    ref_sq = torch.zeros(num_pairs, dtype=torch.float64)
    done = 0
    while done < num_images:
        n = min(batch_size, num_images - done)
        x = noise_images(n, image_size, gen)
        for p, (_, _, lhs, rhs) in enumerate(pair_maps(x, basis, scales)):
            diff_sq[p] += (lhs - rhs).double().pow(2).sum()
            ref_sq[p] += (lhs.double().pow(2).sum() + rhs.double().pow(2).sum()) / 2
        done += n
    total = diff_sq.sqrt().sum()
    if relative:
        return float(total / ref_sq.sqrt().sum())
    return float(total / (num_images * image_size * image_size))


def compare_bases(
    disco: torch.Tensor,
    scales: Sequence[float] = DISCO_SCALES,
    kernel_size: int = KERNEL_SIZE,
    effective_size: int = EFFECTIVE_SIZE,
    seed: int = 0,
    raw: torch.Tensor | None = None,
    num_images: int = 16,
    validation_seed: int = VALIDATION_SEED,
    init_std: float = 1.0,
    image_size: int = PAPER_IMAGE_SIZE,
) -> dict[str, float]:
    """Relative equivariance errors (:func:`basis_equivariance_error`) for the report.

    Keys: ``disco`` (the final basis given), ``disco_raw`` (if ``raw`` is
    given), ``disco_untrained`` (the mixed starting point of ``seed`` and ``init_std``),
    ``hermite_b`` (SESN ``hermite_b`` at the same scales, mult 1.5, order 4)
    and ``random`` (:func:`random_basis` of the same shape and ``seed``).
    """
    bases = {"disco": disco}
    if raw is not None:
        bases["disco_raw"] = raw
    bases["disco_untrained"] = mix_basis(
        initial_disco_basis(kernel_size, effective_size, scales, seed, init_std)
    )
    bases["hermite_b"] = hermite_basis(
        kernel_size, effective_size, scales, HERMITE_B_MULT, HERMITE_MAX_ORDER
    )
    bases["random"] = random_basis(tuple(disco.shape), seed)
    return {
        name: basis_equivariance_error(
            b, scales, num_images=num_images, seed=validation_seed, image_size=image_size
        )
        for name, b in bases.items()
    }


def save_basis(path: str | os.PathLike, basis: torch.Tensor) -> Path:
    """Write a basis atomically as a plain float32 tensor.

    ``.pt`` files hold ``torch.save`` of the tensor (loadable with
    ``torch.load(..., weights_only=True)``; byte-identical for identical
    tensors), ``.npy`` files the array; both load with
    :func:`scalecnn.models.steerable.load_basis`.
    """
    path = Path(path)
    tensor = basis.detach().to("cpu", torch.float32).contiguous().clone()
    if path.suffix == ".npy":
        write_npy(path, tensor.numpy())
        return path
    if path.suffix != ".pt":
        raise ValueError(f"basis files are .pt or .npy, got {path}")
    # serialise to memory: a file target would name the archive after the temporary file
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``scalecnn disco-basis``."""
    p = sub.add_parser(
        "disco-basis",
        help="optimise the DISCO basis on noise images and write the final basis file",
        description="Optimise the DISCO basis (Sosnovik et al. 2021) on random-noise images, "
        "mix it by the Hermite matrix, normalise it and write the final (F, S, K, K) basis "
        "that `scalecnn train --model disco --basis FILE` takes. Defaults are the paper's "
        "setting (40 epochs of 157 steps, batch 64, 154x154 images: hours on a CPU); see "
        "docs/disco_basis.md for costs and a cheap setting.",
    )
    p.add_argument("--kernel-size", type=int, default=KERNEL_SIZE)
    p.add_argument("--effective-size", type=int, default=EFFECTIVE_SIZE)
    p.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(DISCO_SCALES),
        help="ascending scales, at least one integer (default: 1 1.26 1.59 2)",
    )
    p.add_argument("--out", type=Path, required=True, help="final basis file (.pt or .npy)")
    p.add_argument(
        "--raw-out", type=Path, default=None, help="also write the raw (unmixed) basis here"
    )
    p.add_argument("--epochs", type=int, default=PAPER_EPOCHS)
    p.add_argument("--steps-per-epoch", type=int, default=PAPER_STEPS_PER_EPOCH)
    p.add_argument("--batch-size", type=int, default=PAPER_BATCH_SIZE)
    p.add_argument("--image-size", type=int, default=PAPER_IMAGE_SIZE)
    p.add_argument("--lr", type=float, default=PAPER_LR)
    p.add_argument(
        "--init-std",
        type=float,
        default=1.0,
        help="std of the free kernels' normal initialisation (paper: 1; the cheap "
        "setting uses 0.01 so that a few steps suffice)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write a JSON report: equivariance errors of DISCO, hermite_b and a "
        "random basis, and the cost in seconds",
    )
    p.add_argument(
        "--validation-images",
        type=int,
        default=16,
        help="held-out noise images for the report's errors",
    )
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    # no checkpoint: a stop signal (time limit, scancel) ends it at once, cleanly; the
    # workflow's retry starts it again with a longer time limit
    with abort_on_signals(f"disco-basis {args.out}"):
        return _compute_and_write(args)


def _compute_and_write(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    history: list[float] = []

    def log_epoch(epoch: int, epochs: int, loss: float) -> None:
        history.append(loss)
        logger.info(
            "epoch %d/%d loss %.6e (%.1f s)", epoch, epochs, loss, time.perf_counter() - started
        )

    logger.info(
        "optimising the DISCO basis: K=%d E=%d scales=%s, %d epochs x %d steps, batch %d, "
        "images %dx%d, lr %g, init std %g, seed %d, %d threads",
        args.kernel_size,
        args.effective_size,
        args.scales,
        args.epochs,
        args.steps_per_epoch,
        args.batch_size,
        args.image_size,
        args.image_size,
        args.lr,
        args.init_std,
        args.seed,
        torch.get_num_threads(),
    )
    raw = optimise_disco_basis(
        kernel_size=args.kernel_size,
        effective_size=args.effective_size,
        scales=args.scales,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        seed=args.seed,
        progress=log_epoch,
        init_std=args.init_std,
    )
    final = mix_basis(raw)
    seconds = time.perf_counter() - started
    save_basis(args.out, final)
    if args.raw_out is not None:
        save_basis(args.raw_out, raw)
    logger.info("wrote %s %s (%.1f s)", args.out, tuple(final.shape), seconds)
    if args.report is not None:
        errors = compare_bases(
            final,
            args.scales,
            args.kernel_size,
            args.effective_size,
            args.seed,
            raw=raw,
            num_images=args.validation_images,
            init_std=args.init_std,
        )
        report = {
            "basis": str(args.out),
            "shape": list(final.shape),
            "settings": {
                "kernel_size": args.kernel_size,
                "effective_size": args.effective_size,
                "scales": args.scales,
                "epochs": args.epochs,
                "steps_per_epoch": args.steps_per_epoch,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "lr": args.lr,
                "init_std": args.init_std,
                "seed": args.seed,
                "threads": torch.get_num_threads(),
            },
            "seconds": round(seconds, 3),
            "loss_history": history,
            "equivariance_error": errors,
            "validation": {
                "measure": "relative: sum over scale pairs of ||lhs - rhs|| / sum of "
                "rms(||lhs||, ||rhs||)",
                "num_images": args.validation_images,
                "image_size": PAPER_IMAGE_SIZE,
                "seed": VALIDATION_SEED,
            },
        }
        write_json(args.report, report)
        logger.info("equivariance errors: %s", ", ".join(f"{k} {v:.4f}" for k, v in errors.items()))
    return 0
