"""The plan of one SiConv2d FFT computation: FFT sizes, masks and spectral factors.

Everything here depends on the layer's configuration and the input size only, so
it is computed once per shape (float64, cached) and cast once per device and
dtype. Scale ``i``'s kernel ``A_i w A_iᵀ · k²/t_i²`` (``t_i = k + 2i``) has the
conjugate spectrum ``g_h[i] · W · g_w[i]ᵀ`` on the ``nh × nw`` FFT grid, shifted
so that every scale lands on the same output grid (see ``docs/fft_path.md``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from scalecnn.layers.interpolation import interpolation_matrix_1d

__all__ = [
    "ConvConfig",
    "FFTPlan",
    "chunk_mask",
    "conj_shifted_dft",
    "conv_config",
    "fft_sizes",
    "next_fast_len",
    "plan_for",
]

_FAST_PRIMES = (2, 3, 5)
_MAX_CACHED_PLANS = 64


def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are all 2, 3 or 5."""
    m = max(1, n)
    while True:
        r = m
        for p in _FAST_PRIMES:
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fft_sizes(h: int, w: int, k: int, num_scales: int, padding: bool) -> tuple[int, int]:
    """FFT grid ``(nh, nw)`` of an ``h × w`` input: 2·3·5-smooth sizes free of wrap-around.

    Without padding ``n ≥ H`` suffices (overlap-save); with padding the negative
    offsets must wrap into zeros, so ``n ≥ H + t_max // 2``.
    """
    t_max = k + 2 * (num_scales - 1)
    extra = t_max // 2 if padding else 0
    return next_fast_len(h + extra), next_fast_len(w + extra)


@dataclass(frozen=True)
class ConvConfig:
    """What a SiConv2d's output depends on besides its weights and input size: a hashable
    record, passed instead of a positional tuple."""

    k: int  # base kernel size
    num_scales: int  # S: kernels k + 2i for i < S
    interp_mode: str  # kernel interpolation (nearest, bilinear, bicubic, area)
    padding: bool  # False: valid per scale, zero-padded back; True: t_i // 2 zero padding


def conv_config(layer) -> ConvConfig:
    """The :class:`ConvConfig` of ``layer`` (a SiConv2d)."""
    return ConvConfig(layer.kernel_size, layer.num_scales, layer.interp_mode, layer.padding)


@dataclass(frozen=True)
class FFTPlan:
    """Everything that depends on the layer's configuration and the input size only."""

    nh: int
    nw: int
    fw: int  # nw // 2 + 1 frequencies along the width (rfft)
    out_h: int
    out_w: int
    mask: torch.Tensor | None  # (S, out_h, out_w) 1 inside scale i's valid region; None: all
    g_h: torch.Tensor  # (S, nh, k): conj. kernel spectra = g_h[i] · W · g_w[i]ᵀ
    g_w: torch.Tensor  # (S, fw, k), includes the k²/t² factor
    g_w_adj: torch.Tensor  # (S, fw, k): g_w · (Hermitian weight of bin v) / (nh·nw)


def conj_shifted_dft(
    n: int, freqs: int, t: int, offset: int, device: torch.device | None = None
) -> torch.Tensor:
    """``E[u, p] = exp(2πi·u·(p − offset)/n)`` for ``u < freqs``, ``p < t``: the conjugate
    length-``n`` DFT of ``t`` taps placed at ``−offset`` in a circular buffer,
    ``(freqs, t)`` complex128, built on ``device`` (the CPU by default)."""
    u = torch.arange(freqs, dtype=torch.float64, device=device)[:, None]
    pos = torch.arange(t, dtype=torch.float64, device=device)[None, :] - offset
    angle = (2 * math.pi / n) * torch.remainder(u * pos, n)
    return torch.polar(torch.ones_like(angle), angle)


def _shifted_dft(n: int, freqs: int, t: int, offset: int, a: torch.Tensor) -> torch.Tensor:
    """``G[u, p] = Σ_{p'} exp(2πi·u·(p' − offset)/n) · a[p', p]`` for ``u < freqs``.

    The conjugate spectrum of the 1-D interpolation basis (``a``: ``(t, k)``) placed
    at ``−offset`` in a length-``n`` circular buffer: ``(freqs, k)`` complex128.
    """
    return conj_shifted_dft(n, freqs, t, offset) @ a.to(torch.complex128)


@functools.lru_cache(maxsize=_MAX_CACHED_PLANS)
def _plan_cpu(k: int, num_scales: int, mode: str, padding: bool, h: int, w: int) -> tuple:
    """The fields of :class:`FFTPlan` in float64/complex128 on the CPU."""
    sizes = [k + 2 * i for i in range(num_scales)]
    nh, nw = fft_sizes(h, w, k, num_scales, padding)
    fw = nw // 2 + 1
    if padding:
        offsets = [t // 2 for t in sizes]
        out_h, out_w = h + 2 * (k // 2) - k + 1, w + 2 * (k // 2) - k + 1
        mask = None
    else:
        offsets = list(range(num_scales))
        out_h, out_w = h - k + 1, w - k + 1
        mask = torch.zeros(num_scales, out_h, out_w, dtype=torch.float64)
        for i in range(num_scales):
            mask[i, i : out_h - i, i : out_w - i] = 1.0
    g_h, g_w = [], []
    for t, off in zip(sizes, offsets, strict=True):
        a = interpolation_matrix_1d(k, t, mode)
        g_h.append(_shifted_dft(nh, nh, t, off, a))
        g_w.append(_shifted_dft(nw, fw, t, off, a) * ((k * k) / (t * t)))
    g_h_t, g_w_t = torch.stack(g_h), torch.stack(g_w)
    # rfft bins v and nw − v pair up (weight 2) except DC and Nyquist (weight 1)
    weight = torch.full((fw,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if nw % 2 == 0:
        weight[-1] = 1.0
    g_w_adj = g_w_t * (weight / (nh * nw))[None, :, None]
    return nh, nw, fw, out_h, out_w, mask, g_h_t, g_w_t, g_w_adj


_DEVICE_PLANS: dict[tuple, FFTPlan] = {}


def plan_for(layer, x: torch.Tensor) -> FFTPlan:
    """The plan of ``layer`` (a SiConv2d) for input ``x (B, C, H, W)`` on its device and dtype.

    Complex factors are complex128 for a float64 input, else complex64.
    """
    h, w = x.shape[-2:]
    key = (layer.kernel_size, layer.num_scales, layer.interp_mode, layer.padding, h, w)
    dkey = (*key, x.device, x.dtype)
    plan = _DEVICE_PLANS.get(dkey)
    if plan is None:
        nh, nw, fw, out_h, out_w, mask, g_h, g_w, g_w_adj = _plan_cpu(*key)
        cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        plan = FFTPlan(
            nh,
            nw,
            fw,
            out_h,
            out_w,
            None if mask is None else mask.to(x.device, x.dtype),
            g_h.to(x.device, cdtype),
            g_w.to(x.device, cdtype),
            g_w_adj.to(x.device, cdtype),
        )
        if len(_DEVICE_PLANS) >= _MAX_CACHED_PLANS:
            _DEVICE_PLANS.clear()
        _DEVICE_PLANS[dkey] = plan
    return plan


def chunk_mask(plan: FFTPlan, s0: int, s1: int) -> torch.Tensor | None:
    """Valid-region mask of scales ``s0 … s1−1``: ``(sc, out_h, out_w)``; ``None`` with padding."""
    return None if plan.mask is None else plan.mask[s0:s1]
