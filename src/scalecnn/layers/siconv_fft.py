"""Frequency-domain fast path of :class:`~scalecnn.layers.SiConv2d`.

It computes exactly what :meth:`SiConv2d.forward_direct` defines: for every
scale ``i`` the input is cross-correlated with the base kernel interpolated to
``t_i = k + 2i`` (times ``k²/t_i²``), plus bias; ``padding=False`` keeps each
scale's valid region, zero-padded by ``i`` on every side back to scale 0's
shape; ``padding=True`` uses zero padding ``t_i // 2``. Stride 1 only.

Algorithm
---------
Every interpolation mode is linear and separable (``A_i w A_iᵀ · k²/t_i²``, see
:func:`~scalecnn.layers.interpolation.interpolation_matrix_1d`), so the spectrum
of scale ``i``'s (shifted, zero-padded) kernel is ``G_i W G'_iᵀ`` with two
small complex ``(N, k)`` factors ``G_i = DFT · shift · A_i`` computed once per
shape (float64, then cast). With one FFT size ``nh × nw`` for all scales:

1. one ``rfft2`` of the input, shared by all scales and output channels;
2. per chunk of scales: kernel spectra ``G_i W G'_iᵀ`` (two batched complex
   matmuls, no spatial kernel is ever built), the product with the input
   spectrum summed over input channels as one batched complex matmul with the
   frequency as batch dimension (``(B, C) @ (C, scales·O)`` per frequency; for
   ``C = 1`` a broadcast multiply), the bias added to the DC bin, the inverse
   FFT (``ifft`` along the rows, keeping only the rows inside the chunk's valid
   frame, then ``irfft`` along the columns; unnormalised, the ``1/(nh·nw)`` is
   folded into the weights, which saves two passes over every chunk), the crop
   and the zeroed border, written into the preallocated output. When a
   :class:`~scalecnn.layers.ScalePool` follows, :mod:`scalecnn.layers.siconv_pool`
   consumes the same chunks and never builds the stacked output;
3. backward (a custom autograd function, so nothing but the input spectrum is
   kept between forward and backward and the chunks' spectra are recomputed):
   ``rfft2`` of the (masked) output gradient, its products with the conjugate
   kernel spectra (input gradient) and with the conjugate input spectrum
   (kernel-spectrum gradient), which the adjoint of ``G_i · G'_iᵀ`` maps back to
   the ``k × k`` weight gradient; the bias gradient is the DC bin.

Each scale's kernel is shifted by its offset (``i`` without padding, ``t_i//2``
with) in the frequency domain, so all scales land on the same output grid and
one crop serves every scale. Circular wrap-around cannot reach the kept
outputs: without padding the kept outputs of scale ``i`` read input rows
``0 … H−1`` only, so ``nh ≥ H`` suffices (overlap-save); with padding the
negative offsets must wrap into zeros, so ``nh ≥ H + t_max // 2``. Sizes are
rounded up to 2·3·5-smooth numbers (64 for the first layer, 60 for the second;
58 = 2·29 was 2–3× slower). Everything runs in the input's precision (float32
→ complex64; float64 → complex128; half precisions are computed in float32):
the error against the direct path is ~5e-7 of the output's range in float32,
far inside the 1e-4 budget, so float64 is not needed.

Why this design (measured on the 2-core CPU this was written on)
----------------------------------------------------------------
* The direct definition costs ``Σ_i B·C·O·(H−t_i+1)²·t_i²`` multiply-adds:
  4.9·10⁹ (layer 1) and 9.7·10¹⁰ (layer 2) per forward at batch 16 — 26–29
  convolutions with kernels up to 63×63.
* The factorised spatial alternative (convolution with ``A_i w A_iᵀ`` =
  separable convolutions of the input with the ``k`` columns of ``A_i`` along
  each axis, then one ``C·k² → O`` channel-mixing matmul) needs ``B·C·S·k²``
  basis maps (326,144 of up to 52×52 for layer 2, 22,736 for layer 1, against
  ``B·O·S`` = 13,312 and 7,424 output maps): 1.8·10⁹ (rows) + 6.0·10⁹
  (columns) + 1.0·10¹⁰ (mix) = 1.8·10¹⁰ multiply-adds per forward of layer 2,
  5× less than direct. Measured forward only, batch 16, two threads
  (``benchmarks/factorised.py``): layer 1 direct 0.061 s, factorised 0.083 s,
  FFT 0.068 s; layer 2 direct 0.59 s, factorised 2.37 s, FFT 0.18 s — the
  many thin separable convolutions run far below the direct convolutions'
  throughput, so it loses to both and was dropped.
* The FFT path's work is ``2·B·O·S`` FFTs of ``nh×nw`` plus
  ``3·B·C·O·S·nh·(nw/2+1)`` complex multiply-adds (forward, input gradient,
  kernel gradient; 1.2·10⁹ for layer 2) plus three kernel-spectrum formations
  of ``O·C·S·nh·fw·k`` (0.5·10⁹).
* Batched complex matmul with the frequency as the batch dimension and
  ``scales·O`` merged into one matrix dimension was 3× faster than the same
  contraction with one small matmul per (scale, frequency) and ~10× faster than
  broadcasting multiply + sum.
* On this machine large temporary allocations are slow (fresh pages are
  faulted in on every allocation: a 16 MB clone cost 7× the same work on
  reused memory), so on CPU scales are processed in chunks whose largest
  temporary is ~8 MB (one scale per chunk at the paper's shapes); on CUDA a
  chunk is a quarter of the direct path's stacked output (see ``_budget``).

Measured at the paper's shapes, batch 16, forward + backward, two threads
(``benchmarks/run.py``; numbers in ``benchmarks/README.md``): layer 2 (16→32,
58×58, 26 scales) ~15× faster than direct, layer 1 (1→16, 64×64, 29 scales)
~2× (with one input channel its direct convolutions are cheap and its input
needs no gradient, while the FFT path still needs one inverse and one forward
FFT per output map), peak memory lower for both.

:func:`is_faster` compares cost models of both paths fitted to one-thread
measurements of 15 layer shapes (direct: forward multiply-adds at a fitted
rate, per-scale overheads; FFT: the FFT and product terms above, per-chunk
overheads), one for training and one for inference (direct backward is ~8×
its forward for large kernels, so the FFT path wins by more when training):
tiny layers stay direct.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from scalecnn.layers.interpolation import interpolation_matrix_1d

__all__ = ["is_faster", "next_fast_len", "siconv2d_fft"]

_FAST_PRIMES = (2, 3, 5)
_CPU_CHUNK_BYTES = 8 << 20
_CUDA_STACK_FRACTION = 4  # CUDA chunks: this fraction of the direct path's output stack
_CUDA_MIN_CHUNK_BYTES = 4 << 20

# Cost model of is_faster, seconds per unit, fitted to one-thread process times on
# a 2-core AVX-512 CPU. Training: forward + backward (direct backward is ~8× its
# forward for large kernels); inference: forward only.
_COSTS = {
    "train": {
        "direct_mac": 1 / 26e9,  # per multiply-add of the forward, times 2 or 3 passes
        "direct_scale": 1.5e-4,
        "fft_point_log": 0.51e-9,  # per (image · point · log2 points) of the FFTs
        "fft_product": 1.04e-9,  # per complex product term B·C·O·S·nh·fw
        "fft_fixed": 3e-4,
        "fft_chunk": 2e-4,
    },
    "infer": {
        "direct_mac": 1 / 60e9,
        "direct_mac_few_channels": 1 / 40e9,  # C_in < 4: convolutions run slower
        "direct_scale": 6e-5,
        "fft_point_log": 0.3e-9,
        "fft_product": 0.35e-9,
        "fft_fixed": 1.5e-4,
        "fft_chunk": 1e-4,
    },
}


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


@dataclass(frozen=True)
class _Plan:
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


def _shifted_dft(n: int, freqs: int, t: int, offset: int, a: torch.Tensor) -> torch.Tensor:
    """``G[u, p] = Σ_{p'} exp(2πi·u·(p' − offset)/n) · a[p', p]`` for ``u < freqs``.

    The conjugate spectrum of the 1-D interpolation basis (``a``: ``(t, k)``) placed
    at ``−offset`` in a length-``n`` circular buffer; float64/complex128.
    """
    u = torch.arange(freqs, dtype=torch.float64)[:, None]
    pos = torch.arange(t, dtype=torch.float64)[None, :] - offset
    angle = (2 * math.pi / n) * torch.remainder(u * pos, n)
    return torch.polar(torch.ones_like(angle), angle) @ a.to(torch.complex128)


def _fft_sizes(h: int, w: int, k: int, num_scales: int, padding: bool) -> tuple[int, int]:
    t_max = k + 2 * (num_scales - 1)
    extra = t_max // 2 if padding else 0
    return next_fast_len(h + extra), next_fast_len(w + extra)


@functools.lru_cache(maxsize=64)
def _plan_cpu(k: int, num_scales: int, mode: str, padding: bool, h: int, w: int) -> tuple:
    sizes = [k + 2 * i for i in range(num_scales)]
    nh, nw = _fft_sizes(h, w, k, num_scales, padding)
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


_DEVICE_PLANS: dict[tuple, _Plan] = {}


def _plan(layer, x: torch.Tensor) -> _Plan:  # noqa: ANN001
    h, w = x.shape[-2:]
    key = (layer.kernel_size, layer.num_scales, layer.interp_mode, layer.padding, h, w)
    dkey = (*key, x.device, x.dtype)
    plan = _DEVICE_PLANS.get(dkey)
    if plan is None:
        nh, nw, fw, out_h, out_w, mask, g_h, g_w, g_w_adj = _plan_cpu(*key)
        cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        plan = _Plan(
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
        if len(_DEVICE_PLANS) >= 64:
            _DEVICE_PLANS.clear()
        _DEVICE_PLANS[dkey] = plan
    return plan


def is_faster(layer, x: torch.Tensor) -> bool:  # noqa: ANN001
    """Whether the FFT path is expected to beat the direct one for this layer and input.

    ``False`` for stride ≠ 1 (unsupported). Otherwise compares cost estimates of
    both paths (see the module docstring) for training (grad mode on and a
    gradient needed) or inference: the paper's layers pick the FFT path, tiny
    layers (a few small scales) stay direct.
    """
    if layer.stride != 1 or x.dim() != 4:
        return False
    b, c, h, w = x.shape
    k, s, o = layer.kernel_size, layer.num_scales, layer.out_channels
    if min(h, w) < k + 2 * (s - 1):
        return False  # invalid input; let the direct path report it
    out_h, out_w = h - k + 1, w - k + 1
    macs = 0
    for i in range(s):
        t = k + 2 * i
        oh, ow = (h, w) if layer.padding else (out_h - 2 * i, out_w - 2 * i)
        macs += oh * ow * t * t
    training = torch.is_grad_enabled() and (
        x.requires_grad or layer.weights.requires_grad or layer.bias.requires_grad
    )
    cost = _COSTS["train" if training else "infer"]
    if training:
        direct = b * c * o * macs * (2 + int(x.requires_grad)) * cost["direct_mac"]
    else:
        per_mac = cost["direct_mac_few_channels"] if c < 4 else cost["direct_mac"]
        direct = b * c * o * macs * per_mac
    direct += s * cost["direct_scale"]
    nh, nw = _fft_sizes(h, w, k, s, layer.padding)
    points, freqs = nh * nw, nh * (nw // 2 + 1)
    oh, ow = (h, w) if layer.padding else (out_h, out_w)
    chunks = len(_chunks(s, freqs * b * o * 8, _budget(x, o, s, oh, ow)))
    fft = (
        b * o * s * points * math.log2(points) * cost["fft_point_log"]
        + b * c * o * s * freqs * cost["fft_product"]
        + cost["fft_fixed"]
        + chunks * cost["fft_chunk"]
    )
    return fft < direct


def _budget(x: torch.Tensor, out_channels: int, num_scales: int, out_h: int, out_w: int) -> int:
    """Bytes of one chunk of scales' spectra for input ``x (B, C, H, W)``.

    CPU: a fixed 8 MB (see the module notes). CUDA: a fraction of the stacked
    output ``(B, O, S, H', W')`` that the direct path builds, so that the FFT
    path's peak memory stays at or below the direct path's. Larger chunks are
    faster at more memory: on an H200, layer 2 (fwd + bwd, batch 16) took 4.9 ms
    and 506 MB with chunks of half the stack, 13.5 ms and 317 MB with a quarter
    (direct: 142 ms, 587 MB).
    """
    if x.device.type == "cpu":
        return _CPU_CHUNK_BYTES
    stack = x.shape[0] * out_channels * num_scales * out_h * out_w * x.element_size()
    return max(_CUDA_MIN_CHUNK_BYTES, stack // _CUDA_STACK_FRACTION)


def _chunks(total: int, per_scale_bytes: int, budget: int) -> list[tuple[int, int]]:
    """Split scales ``0..total-1`` into balanced chunks of about ``budget`` bytes."""
    sc = max(1, min(total, budget // max(1, per_scale_bytes)))
    n = -(-total // sc)
    sc = -(-total // n)
    return [(s, min(s + sc, total)) for s in range(0, total, sc)]


def _kernel_spectra(plan: _Plan, wc: torch.Tensor, s0: int, s1: int, conj: bool) -> torch.Tensor:
    """Conjugate kernel spectra of scales ``s0 … s1−1``: ``(sc, nh, fw, O·C)``.

    ``wc`` is the weight as complex ``(k_p, k_q, O·C)``; ``conj`` gives the plain spectra.
    """
    g_h, g_w = plan.g_h[s0:s1], plan.g_w[s0:s1]
    if conj:
        g_h, g_w = g_h.conj(), g_w.conj()
    sc, k, oc = s1 - s0, wc.shape[0], wc.shape[-1]
    t1 = torch.matmul(g_w[:, None], wc[None])  # (sc, k_p, fw, oc) = Σ_q g_w[s,v,q] W[p,q]
    kc = torch.bmm(g_h, t1.reshape(sc, k, plan.fw * oc))  # Σ_p g_h[s,u,p] t1[s,p,v]
    return kc.view(sc, plan.nh, plan.fw, oc)


def _project(plan: _Plan, hc: torch.Tensor, s0: int, s1: int) -> torch.Tensor:
    """Adjoint of :func:`_kernel_spectra` (real part, summed over scales).

    ``hc (sc, nh, fw, O·C)``: conjugate gradient wrt the kernel spectra → ``(k, k, O·C)``.
    """
    sc, nh, fw, oc = hc.shape
    k = plan.g_h.shape[-1]
    r = torch.bmm(plan.g_h[s0:s1].conj().transpose(1, 2), hc.reshape(sc, nh, fw * oc))
    g = torch.matmul(plan.g_w_adj[s0:s1, None].conj().transpose(-1, -2), r.view(sc, k, fw, oc))
    return g.real.sum(0)


def _masked_copy(dst: torch.Tensor, src: torch.Tensor, mask: torch.Tensor | None) -> None:
    """``dst = src`` (``mask is None``) or ``dst = src · mask`` (zeroes the padded border)."""
    if mask is None:
        dst.copy_(src)
    else:
        torch.mul(src, mask, out=dst)


def _rfft2_maps(g: torch.Tensor) -> torch.Tensor:
    """``rfft2`` over the last two dims with all leading dims merged into one.

    torch's CPU FFT is several times slower on the same data when it is split into
    several (or size-1) batch dimensions, so every transform here sees one batch dim.
    """
    lead = g.shape[:-2]
    return torch.fft.rfft2(g.reshape(-1, *g.shape[-2:])).view(*lead, g.shape[-2], -1)


def _chunk_mask(plan: _Plan, s0: int, s1: int) -> torch.Tensor | None:
    """Valid-region mask of scales ``s0 … s1−1``: ``(sc, out_h, out_w)``; ``None`` with padding."""
    return None if plan.mask is None else plan.mask[s0:s1]


def _complex_weights(weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """``(O, C, k, k)`` → complex ``(k, k, O·C)``, the layout of :func:`_kernel_spectra`."""
    o, c, k, _ = weights.shape
    return weights.permute(2, 3, 0, 1).reshape(k, k, o * c).to(cdtype)


def _input_spectrum(x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """``rfft2`` of the input: ``(B, 1, nh, fw)`` for one channel, else ``(nh·fw, B, C)``."""
    b, c = x.shape[:2]
    xf = torch.fft.rfft2(x.reshape(b * c, *x.shape[-2:]), s=(plan.nh, plan.nw))
    xf = xf.view(b, c, plan.nh, plan.fw)
    if c == 1:
        return xf
    return xf.permute(2, 3, 0, 1).contiguous().view(plan.nh * plan.fw, b, c)


def _output_chunks(
    plan: _Plan,
    xf: torch.Tensor,
    wc: torch.Tensor,
    bias: torch.Tensor,
    shape: tuple[int, int, int],
    chunks: list[tuple[int, int]],
):  # noqa: ANN202
    """Yield ``(s0, s1, r, y)``: outputs of scales ``s0 … s1−1`` on rows and columns
    ``r … out−r−1``, ``(B, O, sc, out_h − 2r, out_w − 2r)``.

    Without padding every scale of the chunk is zero outside that frame
    (``r = s0``), so the column transforms of those rows are skipped (about half of
    them over all scales); with padding ``r = 0``. ``y`` is not yet masked (see
    :func:`_chunk_mask`); ``xf`` from :func:`_input_spectrum`,
    ``wc`` from :func:`_complex_weights`, ``shape = (B, C, O)``. The ``1/(nh·nw)`` of
    the inverse transform is folded into the weights (``norm="forward"`` skips two
    scaling passes over every output chunk).
    """
    b, c, o = shape
    nh, nw, fw = plan.nh, plan.nw, plan.fw
    f, oh, ow = nh * fw, plan.out_h, plan.out_w
    wc = wc / (nh * nw)
    bias_dc = bias.to(xf.dtype)
    for s0, s1 in chunks:
        sc = s1 - s0
        r = 0 if plan.mask is None else s0
        kc = _kernel_spectra(plan, wc, s0, s1, conj=False)  # (sc, nh, fw, O·C)
        if c == 1:
            kc = kc.permute(3, 0, 1, 2).contiguous()  # (O, sc, nh, fw), small
            yf = xf.view(b, 1, 1, nh, fw) * kc  # (B, O, sc, nh, fw), contiguous
            yf[..., 0, 0] += bias_dc[:, None]
            # inverse along rows, keep the oh needed rows, then along columns
            y = torch.fft.ifft(yf.view(b * o * sc, nh, fw), dim=-2, norm="forward")
            y = torch.fft.irfft(y[:, r : oh - r], n=nw, dim=-1, norm="forward")[..., r : ow - r]
            y = y.view(b, o, sc, *y.shape[-2:])
        else:
            kc = kc.view(sc, f, o, c).transpose(0, 1).contiguous().view(f, sc * o, c)
            yf = torch.bmm(xf, kc.transpose(1, 2))  # (f, B, sc·O)
            yf[0] += bias_dc.repeat(sc)
            y = torch.fft.ifft(yf.view(nh, fw, b * sc * o), dim=0, norm="forward")[r : oh - r]
            y = torch.fft.irfft(y, n=nw, dim=1, norm="forward")[:, r : ow - r]
            y = y.view(*y.shape[:2], b, sc, o).permute(2, 4, 3, 0, 1)
        yield s0, s1, r, y


class _Grads:
    """Accumulates the gradients of one backward pass in the frequency domain.

    ``gxf``: input-gradient spectrum, same layout as the input spectrum;
    ``gw``: ``(k, k, O·C)`` weight gradient; ``gbias``: ``(O,)`` complex (DC bins).
    """

    def __init__(self, x: torch.Tensor, weights: torch.Tensor, xf: torch.Tensor, needs) -> None:  # noqa: ANN001
        o, c, k, _ = weights.shape
        self.need_x, self.need_w = needs[0], needs[1]
        self.c = c
        self.wc = _complex_weights(weights, xf.dtype)
        self.xf = xf
        self.xf_conj = xf.conj().resolve_conj() if self.need_w else None
        self.gxf: torch.Tensor | None = None
        self.gw = torch.zeros(k, k, o * c, dtype=x.dtype, device=x.device) if self.need_w else None
        self.gbias = torch.zeros(o, dtype=xf.dtype, device=x.device)

    def add_scales(self, plan: _Plan, gf: torch.Tensor, s0: int, s1: int) -> None:
        """Add the contributions of output-gradient spectra ``gf (B, O, sc, nh, fw)``."""
        b, o, sc, nh, fw = gf.shape
        self.gbias += gf[..., 0, 0].sum((0, 2))
        kbar = _kernel_spectra(plan, self.wc, s0, s1, conj=True) if self.need_x else None
        if self.c == 1:
            if self.need_x:
                part = (gf * kbar.permute(3, 0, 1, 2)).sum((1, 2), keepdim=True)[:, 0]
                self.gxf = part if self.gxf is None else self.gxf.add_(part)  # (B, 1, nh, fw)
            if self.need_w:
                hc = (gf * self.xf_conj.view(b, 1, 1, nh, fw)).sum(0)  # (O, sc, nh, fw)
                self.gw += _project(plan, hc.permute(1, 2, 3, 0), s0, s1)
            return
        c, f = self.c, nh * fw
        gf = gf.permute(3, 4, 0, 2, 1).contiguous().view(f, b, sc * o)
        if self.need_x:
            kbar = kbar.view(sc, f, o, c).transpose(0, 1).contiguous().view(f, sc * o, c)
            self.gxf = torch.bmm(gf, kbar) if self.gxf is None else self.gxf.baddbmm_(gf, kbar)
        if self.need_w:
            hc = torch.bmm(gf.transpose(1, 2), self.xf_conj)  # (f, sc·O, C)
            self.gw += _project(plan, hc.view(nh, fw, sc, o * c).permute(2, 0, 1, 3), s0, s1)

    def results(self, plan: _Plan, x: torch.Tensor, needs) -> tuple:  # noqa: ANN001
        """``(grad_x, grad_weights, grad_bias)``, ``None`` where not needed."""
        b, c, h, w = x.shape
        grad_x = grad_w = grad_b = None
        if needs[0] and self.gxf is not None:
            if c == 1:
                grad_x = torch.fft.irfft2(self.gxf, s=(plan.nh, plan.nw))[..., :h, :w]
            else:
                gxf = self.gxf.view(plan.nh, plan.fw, b, c)
                gxf = gxf.reshape(plan.nh, plan.fw, b * c)
                gx = torch.fft.irfft2(gxf, s=(plan.nh, plan.nw), dim=(0, 1))
                grad_x = gx[:h, :w].view(h, w, b, c).permute(2, 3, 0, 1)
        elif needs[0]:
            grad_x = torch.zeros_like(x)
        if needs[1]:
            o = self.gw.shape[-1] // c
            k = self.gw.shape[0]
            grad_w = self.gw.view(k, k, o, c).permute(2, 3, 0, 1)
        if needs[2]:
            grad_b = self.gbias.real.to(x.dtype)
        return grad_x, grad_w, grad_b


class _SiConvFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weights, bias, plan, budget):  # noqa: ANN001, ANN205
        b, c, _, _ = x.shape
        o = weights.shape[0]
        s_total = plan.g_h.shape[0]
        xf = _input_spectrum(x, plan)
        wc = _complex_weights(weights, xf.dtype)
        out = x.new_empty(b, o, s_total, plan.out_h, plan.out_w)
        chunks = _chunks(s_total, plan.nh * plan.fw * b * o * xf.element_size(), budget)
        oh, ow = plan.out_h, plan.out_w
        for s0, s1, r, y in _output_chunks(plan, xf, wc, bias, (b, c, o), chunks):
            dst = out[:, :, s0:s1]
            if r > 0:  # the frame outside the computed rows and columns is zero
                for frame in (dst[..., :r, :], dst[..., oh - r :, :]):
                    frame.zero_()
                for frame in (dst[..., r : oh - r, :r], dst[..., r : oh - r, ow - r :]):
                    frame.zero_()
            mask = _chunk_mask(plan, s0, s1)
            mask = None if mask is None else mask[:, r : oh - r, r : ow - r]
            _masked_copy(dst[..., r : oh - r, r : ow - r], y, mask)
        ctx.save_for_backward(x, weights)
        ctx.plan, ctx.budget, ctx.xf = plan, budget, xf
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):  # noqa: ANN001, ANN205
        x, weights = ctx.saved_tensors
        plan, budget, xf = ctx.plan, ctx.budget, ctx.xf
        b, o = x.shape[0], weights.shape[0]
        nh, nw, oh, ow = plan.nh, plan.nw, plan.out_h, plan.out_w
        s_total = plan.g_h.shape[0]
        needs = ctx.needs_input_grad[:3]
        grads = _Grads(x, weights, xf, needs)
        chunks = _chunks(s_total, nh * plan.fw * b * o * xf.element_size(), budget)
        buf = x.new_zeros(b, o, max(s1 - s0 for s0, s1 in chunks), nh, nw)
        for s0, s1 in chunks:
            g = buf[:, :, : s1 - s0]
            _masked_copy(g[..., :oh, :ow], gout[:, :, s0:s1], _chunk_mask(plan, s0, s1))
            grads.add_scales(plan, _rfft2_maps(g), s0, s1)
        return (*grads.results(plan, x, needs), None, None)


def siconv2d_fft(layer, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """SiConv2d through the frequency domain; same result as ``layer.forward_direct(x)``.

    Differentiable wrt ``x``, ``layer.weights`` and ``layer.bias`` (first order).
    Device and dtype follow ``x``; float16/bfloat16 are computed in float32.
    """
    if layer.stride != 1:
        raise NotImplementedError(
            f"the FFT path of SiConv2d supports stride 1 only, got stride={layer.stride}"
        )
    dtype = x.dtype
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    xw = x.to(work)
    plan = _plan(layer, xw)
    # complex matmuls and FFTs must not be recast by an enclosing autocast region
    with torch.autocast(x.device.type, enabled=False):
        budget = _budget(x, layer.out_channels, layer.num_scales, plan.out_h, plan.out_w)
        out = _SiConvFFT.apply(xw, layer.weights.to(work), layer.bias.to(work), plan, budget)
    return out.to(dtype)
