"""Spectral building blocks of SiConv2d's FFT path: kernel spectra, transforms, output chunks.

Layouts (``B`` batch, ``C``/``O`` input/output channels, ``S`` scales, ``sc`` the
scales of one chunk, ``nh × nw`` the FFT grid, ``fw = nw // 2 + 1``):

* complex weights ``wc``: ``(k, k, O·C)`` (:func:`complex_weights`);
* kernel spectra of a chunk: ``(sc, nh, fw, O·C)`` (:func:`kernel_spectra`);
* input spectrum: ``(B, 1, nh, fw)`` for one input channel, else ``(nh·fw, B, C)``
  (:func:`input_spectrum`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from scalecnn.layers.fft.plan import FFTPlan

__all__ = [
    "complex_weights",
    "input_spectrum",
    "kernel_spectra",
    "kernel_spectra_adjoint",
    "masked_copy",
    "output_chunks",
    "rfft2_maps",
]


def kernel_spectra(plan: FFTPlan, wc: torch.Tensor, s0: int, s1: int, conj: bool) -> torch.Tensor:
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


def kernel_spectra_adjoint(plan: FFTPlan, hc: torch.Tensor, s0: int, s1: int) -> torch.Tensor:
    """Adjoint of :func:`kernel_spectra` (real part, summed over scales).

    ``hc (sc, nh, fw, O·C)``: conjugate gradient wrt the kernel spectra → ``(k, k, O·C)``.
    """
    sc, nh, fw, oc = hc.shape
    k = plan.g_h.shape[-1]
    r = torch.bmm(plan.g_h[s0:s1].conj().transpose(1, 2), hc.reshape(sc, nh, fw * oc))
    g = torch.matmul(plan.g_w_adj[s0:s1, None].conj().transpose(-1, -2), r.view(sc, k, fw, oc))
    return g.real.sum(0)


def masked_copy(dst: torch.Tensor, src: torch.Tensor, mask: torch.Tensor | None) -> None:
    """``dst = src`` (``mask is None``) or ``dst = src · mask`` (zeroes the padded border)."""
    if mask is None:
        dst.copy_(src)
    else:
        torch.mul(src, mask, out=dst)


def rfft2_maps(g: torch.Tensor) -> torch.Tensor:
    """``rfft2`` over the last two dims with all leading dims merged into one.

    ``(..., nh, nw)`` → ``(..., nh, fw)``. torch's CPU FFT is slower on the same data
    split into several (or size-1) batch dimensions, so every transform here sees one.
    """
    lead = g.shape[:-2]
    return torch.fft.rfft2(g.reshape(-1, *g.shape[-2:])).view(*lead, g.shape[-2], -1)


def complex_weights(weights: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """``(O, C, k, k)`` → complex ``(k, k, O·C)``, the layout of :func:`kernel_spectra`."""
    o, c, k, _ = weights.shape
    return weights.permute(2, 3, 0, 1).reshape(k, k, o * c).to(cdtype)


def input_spectrum(x: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """``rfft2`` of the input ``(B, C, H, W)``: ``(B, 1, nh, fw)`` for one channel, else
    ``(nh·fw, B, C)``."""
    b, c = x.shape[:2]
    xf = torch.fft.rfft2(x.reshape(b * c, *x.shape[-2:]), s=(plan.nh, plan.nw))
    xf = xf.view(b, c, plan.nh, plan.fw)
    if c == 1:
        return xf
    return xf.permute(2, 3, 0, 1).contiguous().view(plan.nh * plan.fw, b, c)


def output_chunks(
    plan: FFTPlan,
    xf: torch.Tensor,
    wc: torch.Tensor,
    bias: torch.Tensor,
    shape: tuple[int, int, int],
    chunks: list[tuple[int, int]],
) -> Iterator[tuple[int, int, int, torch.Tensor]]:
    """Yield ``(s0, s1, r, y)``: outputs of scales ``s0 … s1−1`` on rows and columns
    ``r … out−r−1``, ``(B, O, sc, out_h − 2r, out_w − 2r)``.

    Without padding every scale of the chunk is zero outside that frame
    (``r = s0``), so the column transforms of those rows are skipped (about half of
    them over all scales); with padding ``r = 0``. ``y`` is not yet masked (see
    :func:`~scalecnn.layers.fft.plan.chunk_mask`); ``xf`` from :func:`input_spectrum`,
    ``wc`` from :func:`complex_weights`, ``bias (O,)``, ``shape = (B, C, O)``. The
    ``1/(nh·nw)`` of the inverse transform is folded into the weights
    (``norm="forward"`` skips two scaling passes over every output chunk).
    """
    b, c, o = shape
    nh, nw, fw = plan.nh, plan.nw, plan.fw
    f, oh, ow = nh * fw, plan.out_h, plan.out_w
    wc = wc / (nh * nw)
    bias_dc = bias.to(xf.dtype)
    for s0, s1 in chunks:
        sc = s1 - s0
        r = 0 if plan.mask is None else s0
        kc = kernel_spectra(plan, wc, s0, s1, conj=False)  # (sc, nh, fw, O·C)
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
