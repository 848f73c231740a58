"""Hermite–Gaussian bases of the steerable models (SESN "hermite_b").

A function of the family is ``g_a(x)·g_b(y)`` with
``g_a(x) = exp(−x² / 2s²) / s · He_a(x / s)`` (``He`` the probabilists' Hermite
polynomials), for all orders ``a + b ≤ max_order`` and for the widths
``s = σ, σ/mult, σ/mult², …`` until the requested number of functions is
collected. Tensors index functions as ``[f, i, j] = g_a(t_i)·g_b(t_j)`` with
``t = −(n//2) … n//2``: the first spatial axis carries order ``a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def hermite_polynomial(x: torch.Tensor, order: int) -> torch.Tensor:
    """Probabilists' Hermite polynomial ``He_order(x)`` (``He₀ = 1``, ``He₁ = x``,
    ``He_{n+1} = x·He_n − n·He_{n−1}``), element-wise on ``x``."""
    prev, cur = torch.ones_like(x), x
    if order == 0:
        return prev
    for n in range(1, order):
        prev, cur = cur, x * cur - n * prev
    return cur


def hermite_functions(
    size: int, base_scale: float, mult: float, max_order: int, num_funcs: int
) -> torch.Tensor:
    """The first ``num_funcs`` Hermite–Gaussian functions on a ``size × size`` grid.

    Orders are taken per width, row-major over the ``(b, a)`` grid restricted to
    ``a + b ≤ max_order``; widths are ``base_scale / mult^j`` for ``j = 0, 1, …``.

    Args:
        size: odd grid size ``n``; the grid is ``−(n//2) … n//2``.
        base_scale: largest width ``σ``.
        mult: ratio between consecutive widths.
        max_order: maximum total order ``a + b``.
        num_funcs: number of functions returned.

    Returns:
        ``(num_funcs, size, size)`` float64.
    """
    grid = torch.linspace(-(size // 2), size // 2, size, dtype=torch.float64)
    orders = [(a, b) for b in range(max_order + 1) for a in range(max_order + 1 - b)]
    num_widths = math.ceil(num_funcs / len(orders))
    funcs = []
    for j in range(num_widths):
        s = base_scale / mult**j
        envelope = torch.exp(-(grid**2) / (2 * s**2)) / s
        g = [envelope * hermite_polynomial(grid / s, n) for n in range(max_order + 1)]
        funcs.extend(torch.outer(g[a], g[b]) for a, b in orders)
    return torch.stack(funcs[:num_funcs])


def normalize_basis(basis: torch.Tensor) -> torch.Tensor:
    """Divide every function by its L2 norm (over H, W) at the smallest scale.

    Args:
        basis: ``(F, S, K, K)`` with scales in ascending order (index 0 smallest).

    Returns:
        ``(F, S, K, K)``; ``basis[f, 0]`` has unit L2 norm for every ``f``.
    """
    norm = basis[:, :1].pow(2).sum(dim=(2, 3), keepdim=True).sqrt()
    return basis / norm


def hermite_basis(
    kernel_size: int = 15,
    effective_size: int = 7,
    scales: Sequence[float] = (2.0, 2.52, 3.17, 4.0),
    mult: float = 1.5,
    max_order: int = 4,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The SESN "hermite_b" basis.

    For scale ``σ`` the functions (:func:`hermite_functions` with width ``σ``,
    ``effective_size²`` of them) live on an odd grid of size
    ``n = int(kernel_size·σ / max(scales)) // 2 · 2 + 1``, centred and zero-padded
    to ``kernel_size``. The result is normalised by :func:`normalize_basis`.

    Args:
        kernel_size: ``K``, size of the padded kernels.
        effective_size: ``√F``; ``F = effective_size²`` functions.
        scales: ``S`` scales ``σ``, ascending.
        mult: width ratio inside a scale.
        max_order: maximum total Hermite order.
        dtype: of the result (computed in float64).

    Returns:
        ``(F, S, K, K)``, e.g. ``(49, 4, 15, 15)`` for the defaults.
    """
    num_funcs = effective_size**2
    max_scale = max(scales)
    per_scale = []
    for sigma in scales:
        n = int(kernel_size * sigma / max_scale) // 2 * 2 + 1
        funcs = hermite_functions(n, sigma, mult, max_order, num_funcs)
        pad = (kernel_size - n) // 2
        per_scale.append(torch.nn.functional.pad(funcs, [pad] * 4))
    return normalize_basis(torch.stack(per_scale, dim=1)).to(dtype)


def hermite_matrix(
    effective_size: int = 7,
    min_scale: float = 1.9,
    mult: float = 1.9,
    max_order: int = 4,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The Hermite matrix that mixes the DISCO "disco_b" basis.

    Row ``f`` is the ``f``-th Hermite–Gaussian function (:func:`hermite_functions`
    with width ``min_scale``) on the ``effective_size × effective_size`` grid,
    flattened row-major; a raw basis ``(F, S, K, K)`` is mixed as
    ``(H @ raw.reshape(F, -1)).reshape(F, S, K, K)`` and then normalised.

    Returns:
        ``(F, F)`` with ``F = effective_size²`` (``(49, 49)`` for the defaults).
    """
    num_funcs = effective_size**2
    funcs = hermite_functions(effective_size, min_scale, mult, max_order, num_funcs)
    return funcs.reshape(num_funcs, num_funcs).to(dtype)
