"""SiConv2d through the frequency domain: the autograd function and its entry point.

:func:`siconv2d_fft` computes exactly what ``SiConv2d.forward_direct`` defines:
``(B, C, H, W)`` → ``(B, O, S, H', W')``, for every scale ``i`` the input
cross-correlated with the base kernel interpolated to ``t_i = k + 2i`` (times
``k²/t_i²``), plus bias; ``padding=False`` keeps each scale's valid region,
zero-padded by ``i`` on every side back to scale 0's shape; ``padding=True`` uses
zero padding ``t_i // 2``. Stride 1 only. The backward is hand-written: nothing
but the input spectrum is kept between forward and backward, and the chunks'
kernel spectra are recomputed. The algorithm: ``docs/fft_path.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scalecnn.layers.fft.chunks import chunk_budget, scale_chunks
from scalecnn.layers.fft.plan import FFTPlan, chunk_mask, plan_for
from scalecnn.layers.fft.transforms import (
    complex_weights,
    input_spectrum,
    kernel_spectra,
    kernel_spectra_adjoint,
    masked_copy,
    output_chunks,
    rfft2_maps,
)

__all__ = ["SiConvFFT", "SpectralGrads", "siconv2d_fft"]


class SpectralGrads:
    """Accumulates the gradients of one backward pass in the frequency domain.

    ``gxf``: input-gradient spectrum, same layout as the input spectrum
    (:func:`~scalecnn.layers.fft.transforms.input_spectrum`); ``gw``: ``(k, k, O·C)``
    weight gradient; ``gbias``: ``(O,)`` complex (DC bins). ``needs``: which of
    (input, weights, bias) need a gradient.
    """

    def __init__(
        self, x: torch.Tensor, weights: torch.Tensor, xf: torch.Tensor, needs: Sequence[bool]
    ) -> None:
        o, c, k, _ = weights.shape
        self.need_x, self.need_w = needs[0], needs[1]
        self.c = c
        self.wc = complex_weights(weights, xf.dtype)
        self.xf = xf
        self.xf_conj = xf.conj().resolve_conj() if self.need_w else None
        self.gxf: torch.Tensor | None = None
        self.gw = torch.zeros(k, k, o * c, dtype=x.dtype, device=x.device) if self.need_w else None
        self.gbias = torch.zeros(o, dtype=xf.dtype, device=x.device)

    def add_scales(self, plan: FFTPlan, gf: torch.Tensor, s0: int, s1: int) -> None:
        """Add the contributions of output-gradient spectra ``gf (B, O, sc, nh, fw)``."""
        b, o, sc, nh, fw = gf.shape
        self.gbias += gf[..., 0, 0].sum((0, 2))
        kbar = kernel_spectra(plan, self.wc, s0, s1, conj=True) if self.need_x else None
        if self.c == 1:
            if self.need_x:
                part = (gf * kbar.permute(3, 0, 1, 2)).sum((1, 2), keepdim=True)[:, 0]
                self.gxf = part if self.gxf is None else self.gxf.add_(part)  # (B, 1, nh, fw)
            if self.need_w:
                hc = (gf * self.xf_conj.view(b, 1, 1, nh, fw)).sum(0)  # (O, sc, nh, fw)
                self.gw += kernel_spectra_adjoint(plan, hc.permute(1, 2, 3, 0), s0, s1)
            return
        c, f = self.c, nh * fw
        gf = gf.permute(3, 4, 0, 2, 1).contiguous().view(f, b, sc * o)
        if self.need_x:
            kbar = kbar.view(sc, f, o, c).transpose(0, 1).contiguous().view(f, sc * o, c)
            self.gxf = torch.bmm(gf, kbar) if self.gxf is None else self.gxf.baddbmm_(gf, kbar)
        if self.need_w:
            hc = torch.bmm(gf.transpose(1, 2), self.xf_conj)  # (f, sc·O, C)
            hc = hc.view(nh, fw, sc, o * c).permute(2, 0, 1, 3)
            self.gw += kernel_spectra_adjoint(plan, hc, s0, s1)

    def results(
        self, plan: FFTPlan, x: torch.Tensor, needs: Sequence[bool]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """``(grad_x (B, C, H, W), grad_weights (O, C, k, k), grad_bias (O,))``, ``None``
        where not needed."""
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


class SiConvFFT(torch.autograd.Function):
    """``(x (B, C, H, W), weights (O, C, k, k), bias (O,), plan, budget)`` →
    ``(B, O, S, H', W')``, chunk by chunk of scales; first-order differentiable."""

    @staticmethod
    def forward(ctx, x, weights, bias, plan, budget):
        b, c, _, _ = x.shape
        o = weights.shape[0]
        s_total = plan.g_h.shape[0]
        xf = input_spectrum(x, plan)
        wc = complex_weights(weights, xf.dtype)
        out = x.new_empty(b, o, s_total, plan.out_h, plan.out_w)
        chunks = scale_chunks(s_total, plan.nh * plan.fw * b * o * xf.element_size(), budget)
        oh, ow = plan.out_h, plan.out_w
        for s0, s1, r, y in output_chunks(plan, xf, wc, bias, (b, c, o), chunks):
            dst = out[:, :, s0:s1]
            if r > 0:  # the frame outside the computed rows and columns is zero
                for frame in (dst[..., :r, :], dst[..., oh - r :, :]):
                    frame.zero_()
                for frame in (dst[..., r : oh - r, :r], dst[..., r : oh - r, ow - r :]):
                    frame.zero_()
            mask = chunk_mask(plan, s0, s1)
            mask = None if mask is None else mask[:, r : oh - r, r : ow - r]
            masked_copy(dst[..., r : oh - r, r : ow - r], y, mask)
        ctx.save_for_backward(x, weights)
        ctx.plan, ctx.budget, ctx.xf = plan, budget, xf
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):
        x, weights = ctx.saved_tensors
        plan, budget, xf = ctx.plan, ctx.budget, ctx.xf
        b, o = x.shape[0], weights.shape[0]
        nh, nw, oh, ow = plan.nh, plan.nw, plan.out_h, plan.out_w
        s_total = plan.g_h.shape[0]
        needs = ctx.needs_input_grad[:3]
        grads = SpectralGrads(x, weights, xf, needs)
        chunks = scale_chunks(s_total, nh * plan.fw * b * o * xf.element_size(), budget)
        buf = x.new_zeros(b, o, max(s1 - s0 for s0, s1 in chunks), nh, nw)
        for s0, s1 in chunks:
            g = buf[:, :, : s1 - s0]
            masked_copy(g[..., :oh, :ow], gout[:, :, s0:s1], chunk_mask(plan, s0, s1))
            grads.add_scales(plan, rfft2_maps(g), s0, s1)
        return (*grads.results(plan, x, needs), None, None)


def siconv2d_fft(layer, x: torch.Tensor) -> torch.Tensor:
    """SiConv2d through the frequency domain; same result as ``layer.forward_direct(x)``.

    ``x (B, C, H, W)`` → ``(B, O, S, H', W')``. Differentiable wrt ``x``,
    ``layer.weights`` and ``layer.bias`` (first order). Device and dtype follow
    ``x``; float16/bfloat16 are computed in float32.
    """
    if layer.stride != 1:
        raise NotImplementedError(
            f"the FFT path of SiConv2d supports stride 1 only, got stride={layer.stride}"
        )
    dtype = x.dtype
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    xw = x.to(work)
    plan = plan_for(layer, xw)
    # complex matmuls and FFTs must not be recast by an enclosing autocast region
    with torch.autocast(x.device.type, enabled=False):
        budget = chunk_budget(x, layer.out_channels, layer.num_scales, plan.out_h, plan.out_w)
        out = SiConvFFT.apply(xw, layer.weights.to(work), layer.bias.to(work), plan, budget)
    return out.to(dtype)
