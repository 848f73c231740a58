"""Kernel interpolation: rescale a k×k kernel to t×t (t ≥ k).

Every mode multiplies the rescaled kernel by ``k² / t²`` so that responses stay
comparable across scales. ``nearest``, ``bilinear`` and ``bicubic`` are
``torch.nn.functional.interpolate`` with its default ``align_corners``;
``area`` is the paper's fixed linear map (see :func:`area_matrix_1d`).

All modes are linear and separable, so each can also be written as
``A · w · Aᵀ`` with a (t, k) matrix ``A`` (:func:`interpolation_matrix_1d`),
which the fast path of :class:`~scalecnn.layers.SiConv2d` uses.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from scalecnn.study import INTERPOLATION_MODES

INTERP_MODES = INTERPOLATION_MODES
"""The interpolation modes (:data:`scalecnn.study.INTERPOLATION_MODES`)."""


def check_interp_mode(mode: str) -> str:
    """Return ``mode`` if it is a known interpolation mode, else raise ``ValueError``."""
    if mode not in INTERP_MODES:
        raise ValueError(f"unknown interpolation mode {mode!r}; expected one of {INTERP_MODES}")
    return mode


@functools.lru_cache(maxsize=256)
def area_matrix_1d(k: int, t: int) -> torch.Tensor:
    """The paper's 1-D area map from size ``k`` to size ``t`` as a (t, k) float64 matrix.

    For output index i: ``ix = (i·k) // t`` and ``d = max(0, (i+1)·k − (ix+1)·t)``;
    the output takes ``w[ix]`` with weight ``1 − d/k`` and ``w[ix+1]`` with ``d/k``.
    The 2-D map is the outer product of the row and column maps (no ``k²/t²`` factor here).
    """
    if t < k:
        raise ValueError(f"area interpolation needs t >= k, got k={k}, t={t}")
    mat = torch.zeros(t, k, dtype=torch.float64)
    for i in range(t):
        ix = (i * k) // t
        d = max(0, (i + 1) * k - (ix + 1) * t)
        mat[i, ix] += 1.0 - d / k
        if d > 0:
            mat[i, ix + 1] += d / k
    return mat


@functools.lru_cache(maxsize=256)
def interpolation_matrix_1d(k: int, t: int, mode: str) -> torch.Tensor:
    """(t, k) float64 matrix ``A`` with ``interpolate_kernel(w, t) == A w Aᵀ · k²/t²``.

    For the ``F.interpolate`` modes it is read off by interpolating the unit
    vectors, which is exact because those modes are separable.
    """
    check_interp_mode(mode)
    if mode == "area":
        return area_matrix_1d(k, t)
    eye = torch.eye(k, dtype=torch.float64).reshape(k, 1, k, 1).expand(k, 1, k, k)
    # interpolate (k, 1, k, k) images whose columns are constant: row map only
    rows = F.interpolate(eye.contiguous(), size=(t, t), mode=mode)[:, 0, :, 0]  # (k, t)
    return rows.T.contiguous()


def interpolate_kernel(weight: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Rescale kernels to ``size × size`` and multiply by ``k² / size²``.

    Args:
        weight: ``(out, in, k, k)`` base kernels.
        size: target size ``t >= k``.
        mode: one of ``nearest``, ``bilinear``, ``bicubic``, ``area``.

    Returns:
        ``(out, in, t, t)`` rescaled kernels.
    """
    check_interp_mode(mode)
    k = weight.shape[-1]
    if size < k:
        raise ValueError(f"target kernel size {size} is smaller than the base kernel size {k}")
    factor = (k * k) / (size * size)
    if size == k:
        return weight * factor if factor != 1 else weight
    if mode == "area":
        a = area_matrix_1d(k, size).to(weight)
        out = torch.einsum("ik,oakl,jl->oaij", a, weight, a)
    else:
        out = F.interpolate(weight, size=(size, size), mode=mode)
    return out * factor
