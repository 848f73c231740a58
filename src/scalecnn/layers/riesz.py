"""Riesz transforms and the Riesz layer (Barisin, Schladitz & Redenbach, arXiv 2305.04665).

The Riesz transform of order ``j`` of a 2-D signal ``f`` is the Fourier multiplier

    (R_j f)^(ω) = −i ω_j / |ω| · f^(ω),     j ∈ {x, y},

and the second-order transforms are their products,
``(R_jk f)^(ω) = −ω_j ω_k / |ω|² · f^(ω)``, ``jk ∈ {xx, xy, yy}``; all are zero at
``ω = 0``. (The authors' code, github.com/tibaris/RieszNetworks, uses ``−R_j R_k``
for the second order: a sign the learned mixing weights absorb.) The multipliers are
homogeneous of degree 0 in ``ω``, so the transforms commute with rescaling,
``R(f(·/s)) = (R f)(·/s)``: a network of Riesz transforms, 1×1 channel mixing, batch
norm (eval mode) and ReLU is exactly scale equivariant in the continuous setting, with
no scale channels.

Discretisation: the transforms are computed with ``rfft2``/``irfft2`` on the image
itself taken as periodic (``periodic``, the default and the cheapest), or on the
image extended to twice its size in each direction, by mirroring (``symmetric``:
``[f, flip f]`` along each axis, periodic without jumps at the border) or by zeros
(``zeros``). A constant background has no response with ``periodic`` and
``symmetric``. When the whole canvas is rescaled by 2 the discrete transforms of a
band-limited image scale exactly with ``periodic`` and ``zeros`` (with ``symmetric``
the half-sample mirror axis moves by a quarter pixel); when an object is rescaled
inside a fixed canvas, the border is a fixed length scale and equivariance is only
approximate. The multipliers of terms that are odd along an axis (``x``, ``y``,
``xy``) are set to zero at that axis' Nyquist frequency, where they would not keep
the output real.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from scalecnn.layers.combination import combination_parameters

RIESZ_TERMS: dict[int, tuple[str, ...]] = {1: ("x", "y"), 2: ("xx", "xy", "yy")}
"""Transform names per order (``x``: along the width, ``y``: along the height)."""
PADDINGS = ("periodic", "symmetric", "zeros")


def riesz_multipliers(
    height: int, width: int, orders: tuple[int, ...] = (1, 2), dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Fourier multipliers of the Riesz transforms on an ``height × width`` periodic grid.

    Returns a complex tensor ``(T, height, width // 2 + 1)`` for ``rfft2`` spectra,
    ``T`` = 2 per order 1 and 3 per order 2, in the order of :data:`RIESZ_TERMS`.
    """
    wy = 2 * math.pi * torch.fft.fftfreq(height, dtype=dtype)[:, None]
    wx = 2 * math.pi * torch.fft.rfftfreq(width, dtype=dtype)[None, :]
    wx, wy = torch.broadcast_tensors(wx, wy)
    norm2 = wx**2 + wy**2
    norm2[0, 0] = 1.0  # the multipliers are set to 0 at ω = 0 below
    norm = norm2.sqrt()
    nyq_x = torch.zeros_like(wx, dtype=torch.bool)
    nyq_y = torch.zeros_like(wx, dtype=torch.bool)
    if width % 2 == 0:
        nyq_x[:, -1] = True
    if height % 2 == 0:
        nyq_y[height // 2, :] = True
    terms = []
    for order in sorted(set(orders)):
        if order not in RIESZ_TERMS:
            raise ValueError(f"Riesz order {order} not supported; expected 1 or 2")
        for name in RIESZ_TERMS[order]:
            if order == 1:
                w = wx if name == "x" else wy
                m = torch.complex(torch.zeros_like(w), -w / norm)
            else:
                a = wx if name[0] == "x" else wy
                b = wx if name[1] == "x" else wy
                m = torch.complex(-a * b / norm2, torch.zeros_like(a))
            odd_x, odd_y = name.count("x") % 2 == 1, name.count("y") % 2 == 1
            zero = (nyq_x & odd_x) | (nyq_y & odd_y)
            zero[0, 0] = True
            terms.append(torch.where(zero, torch.zeros_like(m), m))
    return torch.stack(terms)


@functools.lru_cache(maxsize=64)
def _multipliers(
    shape: tuple[int, int], orders: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Cached :func:`riesz_multipliers` as complex ``dtype`` on ``device`` (one per grid)."""
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return riesz_multipliers(*shape, tuple(orders)).to(device=device, dtype=complex_dtype)


def _extend(x: torch.Tensor, padding: str, dims: tuple[int, int] = (-2, -1)) -> torch.Tensor:
    """Extend the image axes ``dims`` (height, width) to the signal the FFT treats as periodic."""
    dy, dx = dims
    if padding == "symmetric":
        x = torch.cat([x, x.flip(dx)], dim=dx)
        return torch.cat([x, x.flip(dy)], dim=dy)
    if padding == "zeros":
        x = torch.cat([x, torch.zeros_like(x)], dim=dx)
        return torch.cat([x, torch.zeros_like(x)], dim=dy)
    return x


def riesz_transform(
    x: torch.Tensor, orders: tuple[int, ...] = (1, 2), padding: str = "periodic"
) -> torch.Tensor:
    """Riesz transforms of every channel: ``(B, C, H, W)`` → ``(B, C, T, H, W)``.

    ``T`` = 5 for orders 1 and 2 (``x, y, xx, xy, yy``). Computed in float32 or
    float64 as ``x``; the multipliers are cached per grid size.
    """
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; expected one of {PADDINGS}")
    h, w = x.shape[-2:]
    ext = _extend(x, padding)
    mult = _multipliers(tuple(ext.shape[-2:]), tuple(orders), x.device, x.dtype)
    spec = torch.fft.rfft2(ext)  # (B, C, H', W'//2 + 1)
    out = torch.fft.irfft2(spec.unsqueeze(-3) * mult, s=ext.shape[-2:])
    return out[..., :h, :w]


def to_spatial_major(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(H, W, C, B)`` (contiguous), the layout of :class:`RieszLayer`."""
    return x.permute(2, 3, 1, 0).contiguous()


def from_spatial_major(x: torch.Tensor) -> torch.Tensor:
    """``(H, W, C, B)`` → ``(B, C, H, W)`` (contiguous)."""
    return x.permute(3, 2, 0, 1).contiguous()


class RieszLayer(nn.Module):
    """Riesz transforms of every input channel followed by learned 1×1 channel mixing.

    Args:
        in_channels, out_channels: feature channels.
        orders: Riesz orders used (default 1 and 2: ``T`` = 5 transforms per channel).
        padding: ``periodic`` (default), ``symmetric`` or ``zeros`` (see module docs).
        bias: add a learned bias per output channel (off by default: batch norm follows).

    ``weight`` ``(C_out, C_in, T)`` holds the only weights: ``out_o = Σ_c Σ_t w_{o,c,t} R_t f_c``.

    ``forward(x)`` works on *spatial-major* tensors, ``(H, W, C_in, B)`` →
    ``(H, W, C_out, B)`` (see :func:`to_spatial_major`): as transforms and mixing are
    linear, the mixing is done on the spectra, where per frequency ``ω`` the
    ``C_out × C_in`` matrix ``Σ_t w_{o,c,t} m_t(ω)`` multiplies the input spectra. With
    the frequencies as the leading axes this is one batched GEMM over the frequencies
    without transposes; the ``T · C_in`` transforms are never stored and only
    ``C_out`` inverse FFTs are needed.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        orders: tuple[int, ...] = (1, 2),
        padding: str = "periodic",
        bias: bool = False,
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; expected one of {PADDINGS}")
        self.orders = tuple(sorted(set(orders)))
        self.padding = padding
        n_terms = sum(len(RIESZ_TERMS.get(o, ())) for o in self.orders)
        riesz_multipliers(2, 2, self.orders)  # validates the orders
        self.weight, bias_param = combination_parameters(in_channels, out_channels, n_terms, bias)
        self.register_parameter("bias", bias_param)

    def extra_repr(self) -> str:
        c_out, c_in, _ = self.weight.shape
        return f"{c_in}, {c_out}, orders={self.orders}, padding={self.padding!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c, b = x.shape
        ext = _extend(x, self.padding, dims=(0, 1))
        spec = torch.fft.rfft2(ext, dim=(0, 1))  # (H', W'', C, B)
        hf, wf = spec.shape[:2]
        nf = hf * wf
        mult = _multipliers(tuple(ext.shape[:2]), self.orders, x.device, x.dtype).reshape(-1, nf)
        o = self.weight.shape[0]
        # real and imaginary parts of Σ_t w_{o,c,t} m_t(ω): (frequencies, C_out, C_in)
        filt_re = torch.einsum("tf,oct->foc", mult.real, self.weight)
        filt_im = torch.einsum("tf,oct->foc", mult.imag, self.weight)
        parts = torch.view_as_real(spec)  # (H', W'', C, B, 2)
        rotated = parts.flip(-1) * parts.new_tensor([-1.0, 1.0])  # i · spectrum
        out = torch.baddbmm(
            torch.bmm(filt_re, parts.reshape(nf, c, 2 * b)), filt_im, rotated.reshape(nf, c, 2 * b)
        )  # (frequencies, C_out, B · 2): real and imaginary parts
        out = torch.view_as_complex(out.view(hf, wf, o, b, 2))
        out = torch.fft.irfft2(out, s=ext.shape[:2], dim=(0, 1))[:h, :w]
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same map on ``(B, C_in, H, W)`` → ``(B, C_out, H, W)``, computed plainly:
        all transforms with :func:`riesz_transform`, then the 1×1 mixing (for checks)."""
        r = riesz_transform(x, self.orders, self.padding)  # (B, C, T, H, W)
        out = torch.einsum("bcthw,oct->bohw", r, self.weight)
        return out if self.bias is None else out + self.bias[:, None, None]
