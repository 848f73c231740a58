"""How equivariant a basis is: the DISCO pairwise measure on held-out noise images.

:func:`basis_equivariance_error` measures one basis; :func:`compare_bases` puts
the optimised DISCO basis beside its untrained starting point, SESN's
``hermite_b`` and a random basis of the same shape (the report of
``scalecnn disco-basis``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scalecnn.bases.disco.basis import (
    DISCO_SCALES,
    EFFECTIVE_SIZE,
    HERMITE_MAX_ORDER,
    KERNEL_SIZE,
    mix_basis,
    noise_images,
    pair_maps,
    random_basis,
)
from scalecnn.bases.disco.fit import PAPER_IMAGE_SIZE, initial_disco_basis
from scalecnn.bases.hermite import hermite_basis

__all__ = ["HERMITE_B_MULT", "VALIDATION_SEED", "basis_equivariance_error", "compare_bases"]

VALIDATION_SEED = 12345
"""Seed of the held-out noise images of :func:`basis_equivariance_error`."""
HERMITE_B_MULT = 1.5
"""Width ratio of the SESN "hermite_b" basis (used for the comparison)."""


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
    ``rhs = D_a(x) ⋆ ψ_i`` (:func:`~scalecnn.bases.disco.basis.pair_maps`, all
    functions, all images).

    Args:
        basis: ``(F, S, K, K)``, raw or final.
        scales: the basis' ``S`` scales.
        num_images: held-out noise images.
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

    ``disco``: the final ``(F, S, K, K)`` basis. Keys: ``disco`` (the final basis
    given), ``disco_raw`` (if ``raw`` is given), ``disco_untrained`` (the mixed
    starting point of ``seed`` and ``init_std``), ``hermite_b`` (SESN ``hermite_b``
    at the same scales, mult 1.5, order 4) and ``random``
    (:func:`~scalecnn.bases.disco.basis.random_basis` of the same shape and ``seed``).
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
