"""Work restricted to the one chosen scale of each ``(b, o)`` pair (slice/energy pooling).

``slice`` and ``energy`` pooling choose one scale per (batch, channel) pair
(``idx (B, O)``), so the outputs of the energy forward and the gradients of both
backwards need one FFT per pair instead of one per pair and scale. Per chosen
scale, kernel spectra are formed only for the channels that chose it and one
batched product runs over the smallest block of pairs that holds all pairs that
chose it (:func:`scale_blocks`; slice pooling usually picks one or two scales,
energy pooling a few dominant ones and some stragglers).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from scalecnn.layers.fft.autograd import SpectralGrads
from scalecnn.layers.fft.plan import FFTPlan
from scalecnn.layers.fft.transforms import kernel_spectra, kernel_spectra_adjoint, rfft2_maps

__all__ = ["chosen_outputs", "scale_blocks", "slice_backward"]


def scale_blocks(
    idx: torch.Tensor,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(s, bs, os_, chosen)`` for every scale ``s`` chosen in ``idx (B, O)``.

    ``bs`` / ``os_``: the batch and channel indices (sorted) with at least one pair
    that chose ``s``; ``chosen (len(bs), len(os_))``: which pairs of that block chose
    it. Products restricted to the block cost ``len(bs)·len(os_)`` instead of
    ``B·O`` per frequency, and run as one batched matmul per scale.
    """
    for s in torch.unique(idx).tolist():
        hit = idx == s
        bs = hit.any(1).nonzero().squeeze(1)
        os_ = hit.any(0).nonzero().squeeze(1)
        yield s, bs, os_, hit.index_select(0, bs).index_select(1, os_)


def _block_rows(bs: torch.Tensor, os_: torch.Tensor, out_channels: int) -> torch.Tensor:
    """Flat ``b·O + o`` indices of the block ``bs × os_``, row-major: ``(nb·no,)``."""
    return (bs[:, None] * out_channels + os_[None, :]).reshape(-1)


def _batch_major(spectrum: torch.Tensor, b: int, f: int) -> torch.Tensor:
    """An input spectrum (:func:`~scalecnn.layers.fft.transforms.input_spectrum`) as
    ``(B, F, C)``, contiguous per batch.

    Gathering a few batch entries is then a copy of whole rows, not a strided
    ``index_select`` on the middle dimension of the frequency-major layout.
    """
    if spectrum.dim() == 4:  # one channel: (B, 1, nh, fw)
        return spectrum.reshape(b, f, 1)
    return spectrum.transpose(0, 1).contiguous()


def _block_spectra(
    plan: FFTPlan, wc: torch.Tensor, out_channels: int, os_: torch.Tensor, s: int, conj: bool
) -> torch.Tensor:
    """Kernel spectra of scale ``s`` for output channels ``os_`` only: ``(F, n, C)``.

    ``wc``: all complex weights ``(k, k, O·C)``; ``conj`` as in
    :func:`~scalecnn.layers.fft.transforms.kernel_spectra`.
    """
    k = wc.shape[0]
    if len(os_) < out_channels:
        wc = wc.view(k, k, out_channels, -1).index_select(2, os_).reshape(k, k, -1)
    kc = kernel_spectra(plan, wc, s, s + 1, conj=conj)
    return kc.view(plan.nh * plan.fw, len(os_), -1)


def chosen_outputs(
    plan: FFTPlan, xf: torch.Tensor, wc: torch.Tensor, bias: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """The output map of scale ``idx[b, o]`` for every ``(b, o)``: ``(B, O, H', W')``.

    ``xf``: the input spectrum; ``wc``: complex weights ``(k, k, O·C)``; ``bias (O,)``.
    One inverse FFT per ``(b, o)``; per chosen scale, kernel spectra of the channels
    that chose it and one batched product over the block of pairs that did.
    """
    b, o = idx.shape
    nh, nw, fw, oh, ow = plan.nh, plan.nw, plan.fw, plan.out_h, plan.out_w
    f = nh * fw
    xfb = _batch_major(xf, b, f)
    yf = torch.zeros(b * o, f, dtype=xf.dtype, device=xf.device)
    for s, bs, os_, chosen in scale_blocks(idx):
        kc = _block_spectra(plan, wc, o, os_, s, conj=False)  # (f, no, C)
        xs = xfb.index_select(0, bs).transpose(0, 1).contiguous()  # (f, nb, C)
        part = torch.bmm(xs, kc.transpose(1, 2))
        part = part * chosen  # (f, nb, no); every pair is chosen by one scale only
        yf.index_add_(0, _block_rows(bs, os_, o), part.view(f, -1).t())
    yf.view(b, o, f)[..., 0] += bias * (nh * nw)
    # inverse along rows, keeping the out_h needed ones, then along columns
    y = torch.fft.ifft(yf.view(b * o, nh, fw), dim=-2)[:, :oh]
    y = torch.fft.irfft(y, n=nw, dim=-1)[..., :ow].reshape(b, o, oh, ow)
    return y if plan.mask is None else y * plan.mask[idx]


def slice_backward(
    plan: FFTPlan, grads: SpectralGrads, gout: torch.Tensor, idx: torch.Tensor
) -> None:
    """Gradients of slice/energy pooling from ``gout (B, O, H', W')`` and ``idx (B, O)``.

    One FFT per ``(b, o)``; per chosen scale, products over the block of pairs that
    chose it, accumulated into ``grads``.
    """
    b, o = gout.shape[:2]
    nh, nw, fw, oh, ow = plan.nh, plan.nw, plan.fw, plan.out_h, plan.out_w
    f, c, k = nh * fw, grads.c, plan.g_h.shape[-1]
    g = gout.new_zeros(b, o, nh, nw)
    if plan.mask is None:
        g[..., :oh, :ow] = gout
    else:
        torch.mul(gout, plan.mask[idx], out=g[..., :oh, :ow])
    gf = rfft2_maps(g)  # (B, O, nh, fw)
    grads.gbias += gf[..., 0, 0].sum(0)
    gf = gf.view(b * o, f)
    xf_conj = None if grads.xf_conj is None else _batch_major(grads.xf_conj, b, f)
    gxf = torch.zeros(f, b, c, dtype=gf.dtype, device=gf.device) if grads.need_x else None
    for s, bs, os_, chosen in scale_blocks(idx):
        nb, no = len(bs), len(os_)
        # the gradient of the pairs that chose s, frequency-major: (f, nb, no)
        gsub = (gf.index_select(0, _block_rows(bs, os_, o)) * chosen.view(-1, 1)).t()
        gsub = gsub.contiguous().view(f, nb, no)
        if gxf is not None:  # Σ_o G_bo · conj(K_oc)
            kbar = _block_spectra(plan, grads.wc, o, os_, s, conj=True)  # (f, no, C)
            gxf.index_add_(1, bs, torch.bmm(gsub, kbar))
        if xf_conj is not None:  # Σ_b G_bo · conj(X_bc), mapped back to the base kernel
            xs = xf_conj.index_select(0, bs).transpose(0, 1).contiguous()  # (f, nb, C)
            hc = torch.bmm(gsub.transpose(1, 2), xs)  # (f, no, C)
            part = kernel_spectra_adjoint(plan, hc.view(1, nh, fw, -1), s, s + 1)
            grads.gw.view(k, k, o, c).index_add_(2, os_, part.view(k, k, no, c))
    if gxf is not None:
        grads.gxf = gxf.transpose(0, 1).reshape(b, 1, nh, fw) if c == 1 else gxf
