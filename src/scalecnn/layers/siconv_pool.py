"""SiConv2d followed by ScalePool, fused on the FFT path.

``siconv_scale_pool(conv, pool, x)`` returns exactly ``pool(conv(x))`` (and sets
``pool.indices``), but on the frequency-domain path it never materialises the
``(B, O, S, H', W')`` tensor of all scales:

* **forward**: ``pixel`` and ``slice`` produce the scales chunk by chunk (as in
  :mod:`scalecnn.layers.siconv_fft`) and fold them into a running result of
  shape ``(B, O, H', W')``: ``pixel`` keeps the running maximum and its scale
  per pixel; ``slice`` keeps, per ``(b, o)``, the best slice maximum so far and a
  copy of that slice. A later scale replaces the running choice only when
  strictly better, so ties go to the smallest scale, as with
  ``torch.max``/``argmax`` on the stacked tensor. ``energy`` needs no output map
  to choose: the sum of a scale's outputs is linear in the input, so all
  ``B·O·S`` sums come from window sums of the input mapped onto the base kernel
  (``Σ W ⊙ E_h x E_wᵀ``, one small matmul, see :func:`_window_sum_matrices`);
  then only the chosen scale of each ``(b, o)`` is computed (one inverse FFT per
  pair instead of one per pair and scale; per chosen scale, one batched product
  over the block of pairs that chose it, see :func:`_scale_blocks`).
* **backward**: the pooled gradient reaches only the chosen scale. ``pixel``:
  per chunk of scales the gradient masked to the pixels that chose each scale,
  then the same frequency-domain products as the unfused path. ``slice`` /
  ``energy``: each ``(b, o)`` chose one scale, so one FFT per ``(b, o)`` instead
  of one per ``(b, o, scale)``; per chosen scale, kernel spectra only for the
  channels that chose it and one batched product over the smallest block of
  (batch, channel) pairs that holds all pairs that chose it (slice pooling
  usually picks one or two scales, energy pooling a few dominant ones and
  some stragglers).

At the paper's second layer (batch 16, 16→32, 26 scales) the backward of
``slice``/``energy`` pooling does ~26× fewer FFTs (and, when few scales are
chosen, about as many fewer products), ``energy``'s forward likewise, and every
mode avoids writing and re-reading the 144 MB stacked output. ``pixel`` keeps
most of the unfused cost: its forward needs every output map for the per-pixel
maximum and its backward one FFT per ``(b, o, scale)`` (each scale receives the
gradient of the pixels it won).

When the layer takes its direct path (forced or chosen by
:meth:`SiConv2d.resolved_method`) this is plain ``pool(conv(x))``. Forward hooks
registered on ``conv`` or ``pool`` do not run on the fused path.
"""

from __future__ import annotations

import functools

import torch

from scalecnn.layers import siconv_fft
from scalecnn.layers.interpolation import interpolation_matrix_1d
from scalecnn.layers.pooling import ScalePool
from scalecnn.layers.siconv import SiConv2d
from scalecnn.layers.siconv_fft import (
    _budget,
    _chunks,
    _complex_weights,
    _Grads,
    _input_spectrum,
    _output_chunks,
    _Plan,
    _plan,
    _rfft2_maps,
)

__all__ = ["fuses_by_default", "siconv_scale_pool"]


def siconv_scale_pool(
    conv: SiConv2d, pool: ScalePool, x: torch.Tensor, fuse: bool | None = None
) -> torch.Tensor:
    """``pool(conv(x))``: ``(B, C, H, W)`` → ``(B, O, H', W')``; fused on the FFT path.

    Sets ``pool.indices`` like :class:`ScalePool` does (``(B, O, H', W')`` for
    ``pixel``, ``(B, O)`` for ``slice``/``energy``).

    ``fuse``: ``None`` fuses where that is faster, on the CPU. On CUDA the fused
    path's loops over chunks of scales cost more kernel launches than the stacked
    tensor costs memory traffic (H200: a pixel_pool training step took 31 ms
    fused, 12 ms unfused), so there the two modules run one after the other.
    ``True`` fuses on any device, ``False`` never.
    """
    conv._check_input(x)
    if fuse is None:
        fuse = fuses_by_default(x.device)
    if not fuse or conv.resolved_method(x) != "fft" or conv.stride != 1:
        return pool(conv(x))
    dtype = x.dtype
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    xw = x.to(work)
    plan = _plan(conv, xw)
    with torch.autocast(x.device.type, enabled=False):
        out, idx = _SiConvPoolFFT.apply(
            xw,
            conv.weights.to(work),
            conv.bias.to(work),
            plan,
            _budget(x, conv.out_channels, conv.num_scales, plan.out_h, plan.out_w),
            pool.mode,
            (conv.kernel_size, conv.num_scales, conv.interp_mode, conv.padding),
        )
    pool.indices = idx
    return out.to(dtype)


def fuses_by_default(device: torch.device | str) -> bool:
    """Whether :func:`siconv_scale_pool` fuses on ``device`` when ``fuse`` is ``None``."""
    return torch.device(device).type == "cpu"


def _state(y: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An empty ``(B, O, H', W')`` tensor laid out in memory like one scale of ``y``.

    ``y (B, O, sc, H', W')`` comes out of the inverse FFT as a permuted view; running
    state with the same memory order keeps the elementwise updates vectorised.
    """
    b, o, _, h, w = y.shape
    order = sorted(range(4), key=lambda d: -y[:, :, 0].stride(d))
    sizes = [(b, o, h, w)[d] for d in order]
    flat = torch.empty(sizes, dtype=dtype or y.dtype, device=y.device)
    return flat.permute([order.index(d) for d in range(4)])


def _ring(t: torch.Tensor, r: int) -> list[torch.Tensor]:
    """Views of the pixels at distance exactly ``r`` from the border of ``t (..., H, W)``."""
    h, w = t.shape[-2:]
    top, bottom = t[..., r, r : w - r], t[..., h - 1 - r, r : w - r]
    left, right = t[..., r + 1 : h - 1 - r, r], t[..., r + 1 : h - 1 - r, w - 1 - r]
    return [top, bottom, left, right] if h - 1 - r > r else [top]


def _fold_pixel(state: dict, v: torch.Tensor, s: int, region: tuple) -> None:
    """Fold scale ``s`` into the running pixel maximum.

    ``v (B, O, h, w)``: scale ``s``'s outputs on ``region`` (its valid rows/columns
    without padding, all with padding), zero elsewhere. Without padding a pixel at
    distance ``r`` from the border first meets a zero at scale ``r + 1`` (later zeros
    tie), so only that ring is compared with zero.
    """
    if s == 0:
        state["out"], state["idx"] = _state(v[:, :, None]), _state(v[:, :, None], torch.int16)
        state["out"].copy_(v)
        state["idx"].zero_()
        return
    run, idx = state["out"], state["idx"]
    ri, ii = run[region], idx[region]
    _set_index_where(ii, v > ri, s)
    torch.maximum(ri, v, out=ri)
    if region[-1].start > 0:
        for rr, ir in zip(_ring(run, s - 1), _ring(idx, s - 1), strict=True):
            _set_index_where(ir, rr < 0, s)
            rr.clamp_(min=0)


def _set_index_where(idx: torch.Tensor, cond: torch.Tensor, s: int) -> None:
    """``idx[cond] = s`` for a running index whose entries are all ``< s``.

    Written as ``idx = max(idx, s·cond)``: branch-free, ~30× faster on CPU than
    ``masked_fill_`` with an irregular mask.
    """
    torch.maximum(idx, cond.to(idx.dtype).mul_(s), out=idx)


def _fold_slice(state: dict, v: torch.Tensor, s: int, region: tuple, mode: str) -> None:
    """Fold scale ``s`` (outputs ``v`` on ``region``, zero elsewhere) into the running
    per-(b, o) choice of ``slice``/``energy`` pooling.

    Only ``region`` of the kept slice is written; the final ``mask[idx]`` zeroes the rest.
    """
    if mode == "slice":
        score = v.amax(dim=(-2, -1))
        if region[-1].start > 0:
            score.clamp_(min=0)  # the zero border competes for the maximum
    else:
        score = v.sum(dim=(-2, -1))
    if s == 0:
        state["out"] = _state(v[:, :, None])
        state["out"].copy_(v)
        state["best"], state["idx"] = score, torch.zeros_like(score, dtype=torch.int64)
        return
    better = score > state["best"]
    if not bool(better.any()):
        return
    state["best"] = torch.where(better, score, state["best"])
    state["idx"].masked_fill_(better, s)
    bs, os_ = better.nonzero(as_tuple=True)
    state["out"][region][bs, os_] = v[bs, os_]


@functools.lru_cache(maxsize=32)
def _window_sum_matrices(k: int, num_scales: int, mode: str, padding: bool, n: int) -> tuple:
    """Per scale, ``E (k, n)`` with ``Σ_valid outputs = Σ W ⊙ (E_h · x · E_wᵀ)`` (float64).

    Scale ``s`` (kernel ``t = k + 2s`` = ``A w Aᵀ · k²/t²``) reads input position
    ``a = q + i − off`` for output ``q < L = n + 2·off − t + 1`` and kernel tap ``i < t``
    (``off = 0`` without padding, ``t // 2`` with), so the sum of its
    outputs along one axis is ``Σ_i k_i Σ_a x_a [0 ≤ a − i + off < L]``: the window
    indicator ``R (t, n)``, mapped to the base kernel by ``(k/t)·Aᵀ``. Also returns
    the number of outputs per scale along the axis (the bias counts once per output).
    """
    mats, counts = [], []
    a_pos = torch.arange(n, dtype=torch.float64)[None, :]
    for s in range(num_scales):
        t = k + 2 * s
        off = t // 2 if padding else 0
        length = n + 2 * off - t + 1
        i_pos = torch.arange(t, dtype=torch.float64)[:, None]
        shifted = a_pos - i_pos + off
        window = ((shifted >= 0) & (shifted < length)).to(torch.float64)  # (t, n)
        mats.append(interpolation_matrix_1d(k, t, mode).T @ window * (k / t))
        counts.append(length)
    return torch.stack(mats), torch.tensor(counts, dtype=torch.float64)


def _energy_scores(
    conv_cfg: tuple, x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Sum over each scale's valid outputs, ``(B, O, S)``, without computing the outputs.

    ``conv_cfg = (k, S, mode, padding)``. Cost ``B·C·S·k·H·W`` (one matmul) instead of
    all ``B·O·S`` output maps.
    """
    k, num_scales, mode, padding = conv_cfg
    b, c, h, w = x.shape
    e_h, n_h = _window_sum_matrices(k, num_scales, mode, padding, h)
    e_w, n_w = _window_sum_matrices(k, num_scales, mode, padding, w)
    e_h, e_w = e_h.to(x), e_w.to(x)
    rows = e_h.reshape(num_scales * k, h) @ x.permute(2, 0, 1, 3).reshape(h, b * c * w)
    rows = rows.view(num_scales, k * b * c, w)
    z = torch.bmm(rows, e_w.transpose(1, 2))  # (S, k_p·B·C, k_q)
    z = z.view(num_scales, k, b, c, k).permute(0, 2, 3, 1, 4).reshape(num_scales, b, c * k * k)
    scores = z @ weights.reshape(weights.shape[0], c * k * k).T  # (S, B, O)
    scores = scores + bias * (n_h * n_w).to(x)[:, None, None]
    return scores.permute(1, 2, 0)


def _scale_blocks(idx: torch.Tensor):  # noqa: ANN202
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
    """An input spectrum from :func:`_input_spectrum` as ``(B, F, C)``, contiguous per batch.

    Gathering a few batch entries is then a copy of whole rows (an ``index_select``
    on the middle dimension of the frequency-major layout was several times slower).
    """
    if spectrum.dim() == 4:  # one channel: (B, 1, nh, fw)
        return spectrum.reshape(b, f, 1)
    return spectrum.transpose(0, 1).contiguous()


def _block_spectra(
    plan: _Plan, wc: torch.Tensor, out_channels: int, os_: torch.Tensor, s: int, conj: bool
) -> torch.Tensor:
    """Kernel spectra of scale ``s`` for output channels ``os_`` only: ``(F, n, C)``.

    ``wc``: all complex weights ``(k, k, O·C)`` (:func:`_complex_weights`); ``conj``
    as in :func:`siconv_fft._kernel_spectra`.
    """
    k = wc.shape[0]
    if len(os_) < out_channels:
        wc = wc.view(k, k, out_channels, -1).index_select(2, os_).reshape(k, k, -1)
    kc = siconv_fft._kernel_spectra(plan, wc, s, s + 1, conj=conj)
    return kc.view(plan.nh * plan.fw, len(os_), -1)


def _chosen_outputs(
    plan: _Plan, xf: torch.Tensor, wc: torch.Tensor, bias: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """The output map of scale ``idx[b, o]`` for every ``(b, o)``: ``(B, O, H', W')``.

    One inverse FFT per ``(b, o)``; per chosen scale, kernel spectra of the channels
    that chose it and one batched product over the block of pairs that did.
    """
    b, o = idx.shape
    nh, nw, fw, oh, ow = plan.nh, plan.nw, plan.fw, plan.out_h, plan.out_w
    f = nh * fw
    xfb = _batch_major(xf, b, f)
    yf = torch.zeros(b * o, f, dtype=xf.dtype, device=xf.device)
    for s, bs, os_, chosen in _scale_blocks(idx):
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


def _energy_forward(
    plan: _Plan, conv_cfg: tuple, x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy pooling: scores from window sums, then only the chosen scale per ``(b, o)``."""
    idx = _energy_scores(conv_cfg, x, weights, bias).argmax(dim=2)  # first maximum
    xf = _input_spectrum(x, plan)
    out = _chosen_outputs(plan, xf, _complex_weights(weights, xf.dtype), bias, idx)
    return out.contiguous(), idx, xf


def _pooled_forward(
    plan: _Plan, x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, budget: int, mode: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Running pooling over the scale chunks; returns ``(out, indices, input spectrum)``."""
    b, c = x.shape[:2]
    o = weights.shape[0]
    s_total = plan.g_h.shape[0]
    xf = _input_spectrum(x, plan)
    wc = _complex_weights(weights, xf.dtype)
    chunks = _chunks(s_total, plan.nh * plan.fw * b * o * xf.element_size(), budget)
    border = plan.mask is not None
    oh, ow = plan.out_h, plan.out_w
    state: dict = {}
    for s0, s1, r, y in _output_chunks(plan, xf, wc, bias, (b, c, o), chunks):
        for s in range(s0, s1):
            d = s - r if border else 0  # scale s is valid on [s, out − s) without padding
            v = y[:, :, s - s0, d : y.shape[-2] - d, d : y.shape[-1] - d]
            e = s if border else 0
            region = (..., slice(e, oh - e), slice(e, ow - e))
            if mode == "pixel":
                _fold_pixel(state, v, s, region)
            else:
                _fold_slice(state, v, s, region, mode)
    out, idx = state["out"], state["idx"]
    if mode != "pixel" and border:
        out = out * plan.mask[idx]  # zero the chosen slice's padded border
    return out.contiguous(), idx.contiguous().long(), xf


def _pixel_backward(
    plan: _Plan, grads: _Grads, gout: torch.Tensor, idx: torch.Tensor, budget: int
) -> None:
    """Per chunk of scales: the pooled gradient where that scale won, then the products.

    Chunks run from the largest scale down, so each scale's valid region covers the
    previous one's and the reused buffer never holds stale values.
    """
    b, o = gout.shape[:2]
    nh, nw, oh, ow = plan.nh, plan.nw, plan.out_h, plan.out_w
    s_total = plan.g_h.shape[0]
    itemsize = torch.empty((), dtype=grads.xf.dtype).element_size()
    chunks = _chunks(s_total, nh * plan.fw * b * o * itemsize, budget)
    buf = gout.new_zeros(b, o, max(s1 - s0 for s0, s1 in chunks), nh, nw)
    idx = idx.to(torch.int16)
    border = plan.mask is not None
    for s0, s1 in reversed(chunks):
        for s in range(s0, s1):
            r = s if border else 0
            region = (..., slice(r, oh - r), slice(r, ow - r))
            torch.mul(gout[region], idx[region] == s, out=buf[:, :, s - s0][region])
        grads.add_scales(plan, _rfft2_maps(buf[:, :, : s1 - s0]), s0, s1)


def _slice_backward(plan: _Plan, grads: _Grads, gout: torch.Tensor, idx: torch.Tensor) -> None:
    """One FFT per ``(b, o)``; per chosen scale, products over the block of pairs that chose it."""
    b, o = gout.shape[:2]
    nh, nw, fw, oh, ow = plan.nh, plan.nw, plan.fw, plan.out_h, plan.out_w
    f, c, k = nh * fw, grads.c, plan.g_h.shape[-1]
    g = gout.new_zeros(b, o, nh, nw)
    if plan.mask is None:
        g[..., :oh, :ow] = gout
    else:
        torch.mul(gout, plan.mask[idx], out=g[..., :oh, :ow])
    gf = _rfft2_maps(g)  # (B, O, nh, fw)
    grads.gbias += gf[..., 0, 0].sum(0)
    gf = gf.view(b * o, f)
    xf_conj = None if grads.xf_conj is None else _batch_major(grads.xf_conj, b, f)
    gxf = torch.zeros(f, b, c, dtype=gf.dtype, device=gf.device) if grads.need_x else None
    for s, bs, os_, chosen in _scale_blocks(idx):
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
            part = siconv_fft._project(plan, hc.view(1, nh, fw, -1), s, s + 1)
            grads.gw.view(k, k, o, c).index_add_(2, os_, part.view(k, k, no, c))
    if gxf is not None:
        grads.gxf = gxf.transpose(0, 1).reshape(b, 1, nh, fw) if c == 1 else gxf


class _SiConvPoolFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weights, bias, plan, budget, mode, conv_cfg):  # noqa: ANN001, ANN205
        if mode == "energy":
            out, idx, xf = _energy_forward(plan, conv_cfg, x, weights, bias)
        else:
            out, idx, xf = _pooled_forward(plan, x, weights, bias, budget, mode)
        ctx.save_for_backward(x, weights, idx)
        ctx.plan, ctx.budget, ctx.xf, ctx.mode = plan, budget, xf, mode
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout, _gidx):  # noqa: ANN001, ANN205
        x, weights, idx = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        grads = _Grads(x, weights, ctx.xf, needs)
        if ctx.mode == "pixel":
            _pixel_backward(ctx.plan, grads, gout, idx, ctx.budget)
        else:
            _slice_backward(ctx.plan, grads, gout, idx)
        return (*grads.results(ctx.plan, x, needs), None, None, None, None)
