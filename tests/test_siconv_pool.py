"""SiConv2d + ScalePool fused on the FFT path against ``pool(conv.forward_direct(x))``."""

from __future__ import annotations

import pytest
import torch

from scalecnn.layers import POOL_MODES, ScalePool, SiConv2d, siconv_scale_pool
from scalecnn.layers.fft.plan import conv_config
from scalecnn.layers.fft.pool import SiConvPoolFFT
from scalecnn.layers.fft.pool_chosen import scale_blocks
from scalecnn.layers.fft.pool_energy import energy_scores
from scalecnn.layers.siconv import expected_num_scales
from scalecnn.models import build_model

RTOL = 1e-4  # max |fast − direct| ≤ RTOL · max |direct|


def _assert_close(fast: torch.Tensor, direct: torch.Tensor, what: str) -> None:
    assert fast.shape == direct.shape, what
    err = (fast - direct).abs().max().item()
    scale = direct.abs().max().item()
    assert err <= RTOL * scale, f"{what}: max error {err:.3g} vs max |direct| {scale:.3g}"


def _at_scales(stack: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``stack (B, O, S, H, W)`` at the chosen scales: ``idx (B, O, H, W)`` or ``(B, O)``."""
    if idx.dim() == 2:
        idx = idx[:, :, None, None].expand(-1, -1, *stack.shape[3:])
    return stack.gather(2, idx.unsqueeze(2)).squeeze(2)


def _assert_choices_are_maxima(mode: str, stack: torch.Tensor, idx: torch.Tensor) -> None:
    """Each chosen scale scores the maximum, up to RTOL (float near-ties may differ)."""
    stack = stack.detach()
    if mode == "pixel":
        scores, tol = stack, RTOL * stack.abs().max()
    elif mode == "slice":
        scores, tol = stack.amax(dim=(3, 4)), RTOL * stack.abs().max()
    else:
        scores, tol = stack.sum(dim=(3, 4)), RTOL * stack.abs().sum(dim=(3, 4)).max()
    gap = scores.amax(dim=2) - scores.gather(2, idx.unsqueeze(2)).squeeze(2)
    assert gap.max() <= tol, f"a chosen scale is {gap.max():.3g} below the maximum"


def _compare(conv: SiConv2d, mode: str, x: torch.Tensor, input_grad: bool = True) -> None:
    """Output, chosen indices and gradients (input, weights, bias) of fused vs direct.

    The direct reference is the direct stack of all scales taken at the fused path's
    chosen scales, which must score the maximum; where two scales tie to float
    precision the two paths may choose differently (rare: at most 0.1% of choices).
    """
    x = x.clone().requires_grad_(input_grad)
    wrt = ((x,) if input_grad else ()) + (conv.weights, conv.bias)
    pool = ScalePool(mode)
    stack = conv.forward_direct(x)
    pool(stack.detach())
    direct_idx = pool.indices
    conv.method = "fft"
    fused = siconv_scale_pool(conv, pool, x)
    assert pool.indices.dtype == torch.int64 and pool.indices.shape == direct_idx.shape
    differ = (pool.indices != direct_idx).sum().item()
    assert differ <= max(1, direct_idx.numel() // 1000), f"{differ} chosen scales differ"
    _assert_choices_are_maxima(mode, stack, pool.indices)
    direct = _at_scales(stack, pool.indices)
    grad_out = torch.randn_like(direct)
    grads_direct = torch.autograd.grad(direct, wrt, grad_out)
    grads_fused = torch.autograd.grad(fused, wrt, grad_out)
    _assert_close(fused, direct, "output")
    names = (("input",) if input_grad else ()) + ("weights", "bias")
    for name, gf, gd in zip(names, grads_fused, grads_direct, strict=True):
        _assert_close(gf, gd, f"grad {name}")


SMALL_SHAPES = [
    # (C_in, C_out, H, W, k, batch, interpolation): odd, non-square, one channel, even k
    (2, 3, 13, 15, 3, 2, "bicubic"),
    (1, 4, 15, 13, 3, 2, "bilinear"),
    (3, 2, 12, 15, 4, 2, "area"),
    (2, 2, 11, 11, 5, 3, "nearest"),
]


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("mode", POOL_MODES)
def test_fused_matches_direct_small(mode: str, padding: bool, device: str) -> None:
    torch.manual_seed(0)
    for cin, cout, h, w, k, batch, interp in SMALL_SHAPES:
        conv = SiConv2d(
            cin, cout, expected_num_scales(h, w, k), k, padding=padding, interp_mode=interp
        ).to(device)
        _compare(conv, mode, torch.randn(batch, cin, h, w, device=device))


@pytest.mark.parametrize("mode", POOL_MODES)
def test_fused_matches_direct_paper_layers(mode: str, device: str) -> None:
    """The paper's two layers (k = 7, bicubic), batch 2."""
    torch.manual_seed(1)
    _compare(
        SiConv2d(1, 16, 29, 7, interp_mode="bicubic").to(device),
        mode,
        torch.rand(2, 1, 64, 64, device=device),
        input_grad=False,
    )
    _compare(
        SiConv2d(16, 32, 26, 7, interp_mode="bicubic").to(device),
        mode,
        torch.randn(2, 16, 58, 58, device=device).relu(),
    )


@pytest.mark.parametrize("mode", POOL_MODES)
def test_zero_border_wins_ties_like_the_direct_path(mode: str, device: str) -> None:
    """All responses negative: the zero-padded border of scale 1 beats every valid value.

    The direct path takes the first maximum (scale 1 for border pixels and for the
    slice maximum; for energy the smallest negative sum); the fused one must agree
    and send no gradient into the constant border.
    """
    torch.manual_seed(2)
    conv = SiConv2d(2, 3, expected_num_scales(13, 13, 3), 3, interp_mode="bilinear").to(device)
    with torch.no_grad():
        conv.weights.abs_()
        conv.bias.fill_(-5.0)
    _compare(conv, mode, torch.rand(2, 2, 13, 13, device=device))


def test_fused_path_only_on_the_fft_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = SiConvPoolFFT.apply
    monkeypatch.setattr(SiConvPoolFFT, "apply", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(2, 2, 13, 13)
    pool = ScalePool("pixel")
    siconv_scale_pool(SiConv2d(2, 3, 6, 3, method="direct"), pool, x)
    assert calls == [] and pool.indices.shape == (2, 3, 11, 11)
    siconv_scale_pool(SiConv2d(2, 3, 6, 3, method="fft"), pool, x)
    assert calls == [1] and pool.indices.shape == (2, 3, 11, 11)
    siconv_scale_pool(SiConv2d(2, 3, 6, 3, method="fft"), pool, x, fuse=False)
    assert calls == [1] and pool.indices.shape == (2, 3, 11, 11)


def test_wrong_input_is_reported_before_fusing() -> None:
    with pytest.raises(ValueError, match="num_scales"):
        siconv_scale_pool(
            SiConv2d(2, 3, 5, 3, method="fft"), ScalePool("pixel"), torch.randn(1, 2, 13, 13)
        )


@pytest.mark.parametrize("name", ["pixel_pool", "slice_pool", "energy_pool"])
def test_models_fused_and_unfused_agree(name: str, device: str) -> None:
    """The model's fused stages give the logits and gradients of conv → pool, module by module."""
    torch.manual_seed(3)
    model = build_model(name, kernel_size=7, interpolation="bicubic", num_channels=1, num_classes=5)
    model = model.to(device)
    x = torch.rand(2, 1, 64, 64, device=device)
    names, params = zip(*model.named_parameters(), strict=True)
    model.fuse_pool = False
    ref = model(x)
    ref_idx = (model.pool1.indices, model.pool2.indices)
    ref_grads = torch.autograd.grad(ref.square().sum(), params)
    model.fuse_pool = True
    out = model(x)
    _assert_close(out, ref, "logits")
    idx = (model.pool1.indices, model.pool2.indices)
    differ = sum((a != b).sum().item() for a, b in zip(idx, ref_idx, strict=True))
    assert differ <= max(1, ref_idx[0].numel() // 1000), f"{differ} chosen scales differ"
    if differ:  # a float near-tie (seen on CUDA) routes one gradient elsewhere
        return
    grads = torch.autograd.grad(out.square().sum(), params)
    for p, g, gr in zip(names, grads, ref_grads, strict=True):
        _assert_close(g, gr, f"grad {p}")


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("interp", ["bicubic", "area", "nearest"])
def test_energy_scores_are_the_sums_of_the_output_maps(interp: str, padding: bool) -> None:
    """The window-sum shortcut equals summing each scale's output over (H', W'), float64."""
    torch.manual_seed(4)
    for cin, cout, h, w, k in [(2, 3, 13, 15, 3), (1, 2, 16, 12, 4), (3, 2, 21, 21, 7)]:
        conv = SiConv2d(
            cin, cout, expected_num_scales(h, w, k), k, padding=padding, interp_mode=interp
        ).double()
        x = torch.randn(2, cin, h, w, dtype=torch.float64)
        scores = energy_scores(conv_config(conv), x, conv.weights.detach(), conv.bias.detach())
        expected = conv.forward_direct(x).detach().sum(dim=(3, 4))
        torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)


def test_scale_blocks_partition_the_pairs_by_chosen_scale() -> None:
    """Every (b, o) pair is marked chosen in exactly one block, the one of its scale, and
    each block is the smallest rectangle of batch and channel indices holding its pairs."""
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 5, (6, 7), generator=gen)
    idx[:, 2] = 4  # one scale chosen by a whole channel
    seen = torch.zeros_like(idx)
    for s, bs, os_, chosen in scale_blocks(idx):
        assert chosen.shape == (len(bs), len(os_))
        assert torch.equal(chosen, idx[bs][:, os_] == s)
        assert chosen.any(1).all() and chosen.any(0).all()  # no empty row or column
        seen[bs[:, None], os_[None, :]] += chosen.long()
        expected_rows = sorted({b for b, o in (idx == s).nonzero().tolist()})
        assert bs.tolist() == expected_rows
    assert torch.equal(seen, torch.ones_like(idx))
