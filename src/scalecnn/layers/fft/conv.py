"""Cross-correlation (``F.conv2d`` / ``F.conv3d``) computed in the frequency domain.

:func:`fft_conv` gives what ``F.conv2d`` or ``F.conv3d`` give for stride 1, no
dilation, zero padding and any number of groups, with the same gradients
(``torch.fft`` transforms, differentiated by autograd, around the chunked channel
mixing of :mod:`scalecnn.layers.fft.mixing`, which has its own backward).
:func:`conv_nd` picks the direct or the FFT path (the switch ``conv_fft`` of
:mod:`scalecnn.layers.fastpath`; under ``auto`` by shape and device,
:func:`~scalecnn.layers.fft.cost.fft_is_faster`, unless NNPACK's spatial forward of
:mod:`~scalecnn.layers.fft.direct` is taken); the baselines with large kernels
(conv3d's ``7×7×7`` Conv3d, the 15×15 steerable kernels of hermite and disco, Xu's
columns) call it.

Per spatial dimension of size ``N`` with zero padding ``p`` one FFT length
``L ≥ N + p`` (2·3·5-smooth for the two FFT dimensions) keeps circular
wrap-around on zeros. The input is transformed by ``rfft2`` over the last two
dimensions, the kernel (shifted by ``−p``, conjugated) by two small DFT matrix
products there, and, for 3-D inputs, both by a complex DFT matrix product along
the leading one (torch's FFT along that dimension is slower); per frequency and
group one complex matrix product ``(B, C/g) @ (C/g, O/g)`` mixes the channels; the
inverse transforms (along the leading dimension for the kept outputs only), the
crop to ``N + 2p − K + 1`` and the bias follow. Costs, measurements and the
alternatives tried: ``docs/fft_path.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from scalecnn.layers import fastpath
from scalecnn.layers.fastpath import check_conv_method
from scalecnn.layers.fft.cost import fft_is_faster
from scalecnn.layers.fft.direct import direct_conv, uses_nnpack
from scalecnn.layers.fft.mixing import spectral_mix
from scalecnn.layers.fft.plan import conj_shifted_dft, next_fast_len
from scalecnn.layers.fft.sparse_grad import sparse_aware

__all__ = ["AutoConv3d", "auto_method", "conv_nd", "fft_conv"]


def _as_tuple(value: int | Sequence[int], dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(int(v) for v in value)
    if len(value) != dims:
        raise ValueError(f"{name} needs {dims} values, got {value}")
    return value


def _fft_lengths(
    sizes: Sequence[int], kernel: Sequence[int], padding: Sequence[int]
) -> tuple[int, ...]:
    """Transform length per spatial dimension: the smallest ``L ≥ N + p, K``.

    The last two dimensions go through ``rfft2`` and are rounded up to 2·3·5-smooth
    lengths; a leading (third) dimension is transformed by a DFT matrix product, whose
    cost is proportional to ``L``, so it keeps the smallest length (29, not 30, for
    conv3d's scales).
    """
    needed = [max(n + p, k) for n, k, p in zip(sizes, kernel, padding, strict=True)]
    return (*needed[:-2], *(next_fast_len(n) for n in needed[-2:]))


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _leading_dfts(
    n: int, k: int, p: int, length: int, m: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DFT matrices of the leading spatial dimension of a 3-D correlation.

    Returns ``(forward (L, n), kernel (L, k), inverse (m, L))``: the input's DFT,
    the conjugate DFT of the kernel placed at offset ``−p`` (correlation), and the
    first ``m`` rows of the inverse DFT (the kept outputs only).
    """
    u = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    phase = 2j * math.pi / length
    forward = torch.exp(-phase * u * torch.arange(n, dtype=torch.float64, device=device))
    rows = torch.arange(m, dtype=torch.float64, device=device)[:, None]
    inverse = torch.exp(phase * rows * u.T) / length
    kernel = conj_shifted_dft(length, length, k, p, device).to(dtype)
    return forward.to(dtype), kernel, inverse.to(dtype)


class _RowTransform(torch.autograd.Function):
    """``m (P, Q) @ x (N, Q, R) → (N, P, R)`` for a constant matrix ``m``, with the
    backward ``mᴴ @ grad`` from a contiguous ``mᴴ`` (autograd's would broadcast a
    conjugate view of ``m``, which runs much slower than the forward)."""

    @staticmethod
    def forward(ctx, m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(m)
        return torch.matmul(m, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (m,) = ctx.saved_tensors
        return None, torch.matmul(m.mH.resolve_conj().contiguous(), grad.contiguous())


def _kernel_spectra(
    weight: torch.Tensor, lengths: Sequence[int], padding: Sequence[int]
) -> torch.Tensor:
    """Conjugate spectra of the kernel over its last two dimensions, frequency-major.

    ``weight (O, C/g, [K0,] K1, K2)`` → ``([K0,] L1, L2/2+1, C/g, O)``: the spectra of
    the kernel zero-padded to the FFT grid and shifted by ``−padding`` there
    (circularly, so that the correlation needs no padded input), conjugated. The
    kernel is moved channel-last while it is small and real, and transformed by two
    DFT matrix products (``(L2/2+1, K2)`` along the width, ``(L1, K1)`` along the
    height) whose last factor is the channels: the result is frequency-major without a
    transpose, and only the kernel's ``K1·K2`` taps are multiplied (an FFT of the
    padded grid transforms zeros, and along strided rows).
    """
    dims = weight.dim() - 2
    (o, cg), (k1, k2) = weight.shape[:2], weight.shape[-2:]
    (l1, l2), (p1, p2) = lengths[-2:], padding[-2:]
    f2 = l2 // 2 + 1
    dtype = _COMPLEX[weight.dtype]
    moved = weight.permute(*range(2, 2 + dims), 1, 0)  # ([K0,] K1, K2, C/g, O)
    moved = moved.reshape(*weight.shape[2:], cg * o).to(dtype)
    along_w = conj_shifted_dft(l2, f2, k2, p2, weight.device).to(dtype)  # (f2, K2)
    along_h = conj_shifted_dft(l1, l1, k1, p1, weight.device).to(dtype)  # (L1, K1)
    rows = torch.matmul(along_w, moved)  # ([K0,] K1, f2, C/g·O)
    spectra = torch.matmul(along_h, rows.reshape(*rows.shape[:-3], k1, f2 * cg * o))
    return spectra.view(*weight.shape[2:-2], l1, f2, cg, o)


def _check(x: torch.Tensor, weight: torch.Tensor, groups: int) -> None:
    dims = x.dim() - 2
    if dims not in (2, 3) or weight.dim() != dims + 2:
        raise ValueError(
            f"fft_conv needs a (B, C, *N) input with 2 or 3 spatial dimensions and a "
            f"matching (O, C/groups, *K) weight, got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    c, (o, cg) = x.shape[1], weight.shape[:2]
    if groups < 1 or o % groups or cg * groups != c:
        raise ValueError(
            f"groups={groups} does not fit {c} input channels and weight {tuple(weight.shape)}"
        )


def fft_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d``/``F.conv3d(x, weight, bias, stride=1, padding, groups=groups)`` by FFT.

    When a gradient is recorded, the backward takes the sparse route of
    :mod:`~scalecnn.layers.fft.sparse_grad` where the output's gradient is sparse
    (conv3d: a global maximum follows; the switch ``sparse_backward``) and the FFT's
    backward otherwise.

    Args:
        x: ``(B, C, *N)`` with 2 or 3 spatial dimensions.
        weight: ``(O, C/groups, *K)``.
        bias: ``(O,)`` or ``None``.
        padding: zero padding per spatial dimension (an int for all).
        groups: channel groups (``C`` and ``O`` divisible by it).

    Returns:
        ``(B, O, *(N + 2·padding − K + 1))`` in ``x``'s dtype (half precisions are
        computed in float32).
    """
    _check(x, weight, groups)
    padding = _as_tuple(padding, x.dim() - 2, "padding")
    conv = partial(_fft_conv, padding=padding, groups=groups)
    return sparse_aware(conv, x, weight, bias, padding, groups)


def _fft_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: tuple[int, ...],
    groups: int,
) -> torch.Tensor:
    """:func:`fft_conv` of checked arguments, differentiated by autograd."""
    dims = x.dim() - 2
    (b, c), (o, cg) = x.shape[:2], weight.shape[:2]
    sizes, kernel = tuple(x.shape[2:]), tuple(weight.shape[2:])
    out = tuple(n + 2 * p - k + 1 for n, k, p in zip(sizes, kernel, padding, strict=True))
    if min(out) < 1:
        raise ValueError(f"kernel {kernel} with padding {padding} is larger than the input {sizes}")
    dtype = x.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    lengths = _fft_lengths(sizes, kernel, padding)
    l1, l2 = lengths[-2:]
    f2 = l2 // 2 + 1
    plane = l1 * f2  # frequencies of the last two dimensions (rfft2)
    # spectra over the last two dimensions, then (3-D) the leading one by DFT matrix
    # products (batched over the channels, so no transposes), channel-major
    xs = torch.fft.rfft2(x.to(work), s=(l1, l2))  # (B, C, [N0,] L1, f2)
    ws = _kernel_spectra(weight.to(work), lengths, padding)  # ([K0,] L1, f2, C/g, O)
    if dims == 2:
        ys = spectral_mix(xs.reshape(b, c, plane), ws.reshape(plane, cg, o), groups)
    else:
        fwd, ker, inv = _leading_dfts(
            sizes[0], kernel[0], padding[0], lengths[0], out[0], xs.dtype, x.device
        )
        xs = _RowTransform.apply(fwd, xs.reshape(b * c, sizes[0], plane))  # (B·C, L0, plane)
        ws = (ker @ ws.reshape(kernel[0], -1)).view(-1, cg, o)  # (L0·plane, C/g, O)
        ys = spectral_mix(xs.reshape(b, c, -1), ws, groups)
        ys = _RowTransform.apply(inv, ys.view(b * o, lengths[0], plane))  # (B·O, M0, plane)
    y = torch.fft.irfft2(ys.view(b, o, *out[:-2], l1, f2), s=(l1, l2))
    y = y[..., : out[-2], : out[-1]]
    if bias is not None:
        y = y + bias.to(work).view(-1, *(1,) * dims)
    return y.to(dtype)


def conv_nd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    method: str = "auto",
) -> torch.Tensor:
    """A stride-1 2-D or 3-D convolution by the ``direct`` path (the library's kernels,
    :func:`~scalecnn.layers.fft.direct.direct_conv`), the ``fft`` path (:func:`fft_conv`)
    or, for ``auto``, the one :func:`auto_method` picks.

    Shapes as ``F.conv2d``/``F.conv3d``: ``(B, C, *N)``, ``(O, C/groups, *K)`` →
    ``(B, O, *(N + 2·padding − K + 1))``.
    """
    check_conv_method(method)
    if method == "auto":
        method = auto_method(x, weight, groups)
    if method == "fft":
        return fft_conv(x, weight, bias, padding, groups)
    return direct_conv(x, weight, bias, padding, groups)


def auto_method(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> str:
    """The path of ``conv_nd(method='auto')`` for ``x (B, C, *N)`` and ``weight
    (O, C/groups, *K)``: ``fft`` or ``direct`` as the switch ``conv_fft`` forces, else
    ``fft`` where :func:`fft_is_faster` unless NNPACK's forward is taken (it is faster
    still for mid-sized kernels)."""
    switch = fastpath.mode("conv_fft")
    if switch != "auto":
        return "fft" if switch == "on" else "direct"
    by_fft = fft_is_faster(x, weight) and not uses_nnpack(x, weight, groups)
    return "fft" if by_fft else "direct"


class AutoConv3d(nn.Conv3d):
    """``nn.Conv3d`` (stride 1, zero padding, no dilation) computed by :func:`conv_nd`.

    Same parameters (``weight (O, C/groups, *K)``, ``bias (O,)``), initialisation
    and ``state_dict`` keys as ``nn.Conv3d``, so checkpoints of either load into
    the other. ``method``: ``auto`` (:func:`conv_nd` decides), ``direct`` (``nn.Conv3d``
    itself) or ``fft``.

    Shapes: ``(B, C, D, H, W)`` → ``(B, O, D + 2p − K + 1, …)``.
    """

    def __init__(self, *args: object, method: str = "auto", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        check_conv_method(method)
        unsupported = (
            self.stride != (1, 1, 1)
            or self.dilation != (1, 1, 1)
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
        )
        if unsupported and method == "fft":
            raise ValueError("method='fft' needs stride 1, no dilation and numeric zero padding")
        self.method = "direct" if unsupported else method

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, method={self.method}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "direct":
            return super().forward(x)
        return conv_nd(x, self.weight, self.bias, self.padding, self.groups, self.method)
