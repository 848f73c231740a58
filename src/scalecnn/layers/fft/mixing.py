"""Channel mixing in the frequency domain, chunked over frequencies.

A convolution becomes, per frequency ``f``, one complex matrix product over the
channels: ``y[b, o, f] = Σ_c x[b, c, f] · w[f, c, o]`` (within each channel group).
The input spectra come out of ``torch.fft.rfft2`` channel-major, ``(B, C, F)``; a
batched matrix product needs them frequency-major, ``(F, B, C)``. Transposing
whole spectra (hundreds of MB for conv3d) and multiplying them in one batched call
runs from main memory; :func:`spectral_mix` instead takes a few hundred
frequencies at a time, transposes that slice into a reused buffer, multiplies and
writes it back, so every step works in the cache (measured: ``docs/fft_path.md``).
The kernel spectra arrive frequency-major (they are small before their transform,
so the caller moves their channels last there). The backward is hand-written in the
same chunks: autograd would transpose the whole spectra again and multiply by
conjugate views, which torch materialises slowly; here conjugation happens in place
on chunk buffers.
"""

from __future__ import annotations

import math

import torch

__all__ = ["CHUNK_BYTES", "spectral_mix"]

CHUNK_BYTES = 4 * 2**20
"""Target bytes of one chunk's input, weight and output slices together."""


def _chunk_len(b: int, c: int, o: int, cg: int, nfreq: int, itemsize: int) -> int:
    """Frequencies per chunk: the slices of ``x (B, C)``, ``w (O, C/g)`` and ``y (B, O)``
    of one chunk take about :data:`CHUNK_BYTES`."""
    per_freq = (b * c + o * cg + b * o) * itemsize
    return max(1, min(nfreq, CHUNK_BYTES // per_freq))


def _freq_major_view(t: torch.Tensor, groups: int) -> torch.Tensor:
    """``(R, groups·c, n)`` viewed as ``(groups, n, R, c)`` (strided, no copy)."""
    r, gc, n = t.shape
    return t.view(r, groups, gc // groups, n).permute(1, 3, 0, 2)


def _channel_major_view(t: torch.Tensor, groups: int) -> torch.Tensor:
    """``(R, groups·c, n)`` viewed as ``(R, groups, c, n)`` — the target of a chunk's
    ``(groups, n, R, c)`` result after ``permute(2, 0, 3, 1)``."""
    r, gc, n = t.shape
    return t.view(r, groups, gc // groups, n)


def _weight_groups(w: torch.Tensor, groups: int) -> torch.Tensor:
    """Kernel spectra ``(n, c, groups·o)`` viewed as ``(groups, n, c, o)`` (no copy)."""
    n, c, go = w.shape
    return w.view(n, c, groups, go // groups).permute(2, 0, 1, 3)


def _to_channel_major(dest: torch.Tensor, chunk: torch.Tensor, groups: int) -> None:
    """Write a ``(groups, n, R, c)`` chunk into ``dest (R, groups·c, n)``."""
    _channel_major_view(dest, groups).copy_(chunk.permute(2, 0, 3, 1))


def _bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``a (g, n, i, k) @ b (g, n, k, j)`` into the contiguous buffer ``out (g, n, i, j)``,
    as one ``bmm`` over ``g·n`` (transposed views of ``a``/``b`` are passed to BLAS as
    such; conjugate views are avoided, their products run through slow copies)."""
    g, n = a.shape[:2]
    torch.bmm(
        a.reshape(g * n, *a.shape[2:]),
        b.reshape(g * n, *b.shape[2:]),
        out=out.view(g * n, *out.shape[2:]),
    )
    return out


def _take(buffer: torch.Tensor, *shape: int) -> torch.Tensor:
    """The first ``prod(shape)`` elements of a flat buffer as a contiguous ``shape``."""
    return buffer[: math.prod(shape)].view(shape)


class _SpectralMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
        (b, c, nfreq), o = x.shape, w.shape[2]
        cg, og = c // groups, o // groups
        y = x.new_empty((b, o, nfreq))
        xf = x.new_empty((groups, nfreq, b, cg))  # x frequency-major, kept for backward
        step = _chunk_len(b, c, o, cg, nfreq, x.element_size())
        ybuf = x.new_empty(groups * step * b * og)
        for start in range(0, nfreq, step):
            s = slice(start, start + step)
            xm = xf[:, s]
            xm.copy_(_freq_major_view(x[:, :, s], groups))
            # (g, n, B, c/g) @ (g, n, c/g, o/g) -> (g, n, B, o/g)
            ym = _bmm(xm, _weight_groups(w[s], groups), _take(ybuf, groups, xm.shape[1], b, og))
            _to_channel_major(y[:, :, s], ym, groups)
        ctx.groups = groups
        ctx.save_for_backward(xf, w)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        # per frequency grad_x = grad · wᴴ = conj(conj(grad) · wᵀ) and
        # grad_w = xᴴ · grad = conj(xᵀ · conj(grad)): conjugations only on the chunk buffers
        xf, w = ctx.saved_tensors
        groups = ctx.groups
        need_x, need_w = ctx.needs_input_grad[:2]
        (g, nfreq, b, cg), o = xf.shape, w.shape[2]
        c, og = g * cg, o // g
        grad_x = xf.new_empty((b, c, nfreq)) if need_x else None
        grad_w = torch.empty_like(w) if need_w else None
        step = _chunk_len(b, c, o, cg, nfreq, xf.element_size())
        gbuf, xbuf, wbuf = (xf.new_empty(g * step * r * k) for r, k in ((b, og), (b, cg), (cg, og)))
        for start in range(0, nfreq, step):
            s = slice(start, start + step)
            n = xf[:, s].shape[1]
            gm = _take(gbuf, g, n, b, og)
            gm.copy_(_freq_major_view(grad[:, :, s], groups))  # (g, n, B, o/g)
            gm.conj_physical_()
            if need_x:  # (g, n, B, o/g) @ (g, n, o/g, c/g)
                gx = _bmm(
                    gm, _weight_groups(w[s], groups).transpose(2, 3), _take(xbuf, g, n, b, cg)
                )
                _to_channel_major(grad_x[:, :, s], gx.conj_physical_(), groups)
            if need_w:  # (g, n, c/g, B) @ (g, n, B, o/g), w's layout
                gw = _bmm(xf[:, s].transpose(2, 3), gm, _take(wbuf, g, n, cg, og))
                _weight_groups(grad_w[s], groups).copy_(gw.conj_physical_())
        return grad_x, grad_w, None


def spectral_mix(x: torch.Tensor, w: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Per-frequency channel mixing ``y[b, o, f] = Σ_c x[b, c, f] · w[f, c, o]``.

    Args:
        x: ``(B, C, F)`` complex spectra.
        w: ``(F, C/groups, O)`` complex kernel spectra, frequency-major (output
            channel ``o`` sees the input channels of its group, as in ``F.conv2d``).
        groups: channel groups.

    Returns:
        ``(B, O, F)``; differentiable in ``x`` and ``w`` (PyTorch's conjugate
        convention: per frequency ``grad_x = grad · wᴴ``, ``grad_w = xᴴ · grad``).
    """
    return _SpectralMix.apply(x, w, groups)
