"""The DISCO "disco_b" basis (Sosnovik, Moskalev & Smeulders, BMVC 2021): its maths.

DISCO replaces SESN's analytic Hermite basis by one optimised for *discrete*
scale equivariance. A raw basis ``ψ`` of shape ``(F, S, K, K)`` holds, for
every scale ``σ_s``, ``F = effective_size²`` kernels:

- an integer scale takes the fixed *dilated-delta* basis: the
  ``effective_size × effective_size`` unit impulses spread with step ``σ``
  around the kernel centre (function ``f = r·E + c`` is the impulse at
  ``(K//2 + (r − E//2)·σ, K//2 + (c − E//2)·σ)``);
- any other scale takes ``F`` free ``K × K`` kernels, optimised
  (:mod:`scalecnn.bases.disco.fit`) so that for every pair of scales
  ``σ_i < σ_j`` (``a = σ_j / σ_i > 1``)

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
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from scalecnn.bases.hermite import hermite_matrix, normalize_basis
from scalecnn.study import DISCO_SCALES

__all__ = [
    "DISCO_SCALES",
    "EFFECTIVE_SIZE",
    "HERMITE_MAX_ORDER",
    "HERMITE_MIN_SCALE",
    "HERMITE_MULT",
    "KERNEL_SIZE",
    "check_scales",
    "check_sizes",
    "circular_conv",
    "dilated_delta_basis",
    "downscale",
    "equivariance_loss",
    "is_integer_scale",
    "mix_basis",
    "noise_images",
    "pair_maps",
    "random_basis",
]

KERNEL_SIZE = 15
EFFECTIVE_SIZE = 7
HERMITE_MIN_SCALE = 1.9
HERMITE_MULT = 1.9
HERMITE_MAX_ORDER = 4


def is_integer_scale(scale: float) -> bool:
    """Whether ``scale`` is a positive integer (to 1e-9): such scales use dilated deltas."""
    return scale >= 1 - 1e-9 and abs(scale - round(scale)) < 1e-9


def check_sizes(kernel_size: int, effective_size: int) -> None:
    """Raise ``ValueError`` unless both sizes are odd and positive and ``E ≤ K``."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    if effective_size < 1 or effective_size % 2 == 0:
        raise ValueError(f"effective_size must be odd and positive, got {effective_size}")
    if effective_size > kernel_size:
        raise ValueError(f"effective_size {effective_size} exceeds kernel_size {kernel_size}")


def check_scales(scales: Sequence[float], kernel_size: int, effective_size: int) -> list[float]:
    """The scales as floats, checked: ascending, positive, at least one integer one, and
    every integer scale's dilated-delta grid inside the kernel."""
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
    check_sizes(kernel_size, effective_size)
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
    """The DISCO loss ``Σ_{i<j} ‖D_a(x ⋆ ψ_j) − D_a(x) ⋆ ψ_i‖₂`` (see :func:`pair_maps`).

    ``x (B, 1, H, W)``, ``basis (F, S, K, K)`` → a scalar tensor.
    """
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


def random_basis(
    shape: Sequence[int] = (EFFECTIVE_SIZE**2, len(DISCO_SCALES), KERNEL_SIZE, KERNEL_SIZE),
    seed: int = 0,
) -> torch.Tensor:
    """An untrained ``N(0, 1)`` basis of ``shape`` (``(F, S, K, K)``), normalised like the
    others."""
    gen = torch.Generator().manual_seed(seed)
    return normalize_basis(torch.randn(*shape, generator=gen))
