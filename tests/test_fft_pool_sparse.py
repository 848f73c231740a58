"""The sparse backward of SiConv2d + ScalePool (scalecnn.layers.fft.pool_sparse)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scalecnn.layers.fft.pool as fused_pool
from scalecnn.layers import POOL_MODES, ScalePool, SiConv2d
from scalecnn.layers.fastpath import fastpath
from scalecnn.layers.fft.plan import ConvConfig, conv_config
from scalecnn.layers.fft.pool_sparse import sparse_pool_grads, use_sparse_pool_backward
from scalecnn.layers.siconv import expected_num_scales
from scalecnn.models import build_model

SHAPES = [
    # (C_in, C_out, H, W, k, batch, interpolation)
    (2, 3, 13, 15, 3, 2, "bicubic"),
    (1, 4, 15, 13, 3, 2, "bilinear"),
    (3, 2, 12, 15, 4, 2, "area"),
    (2, 2, 11, 11, 5, 3, "nearest"),
]


def _layer(c_in, c_out, h, w, k, interp, padding, seed=0):
    torch.manual_seed(seed)
    s = expected_num_scales(h, w, k)
    conv = SiConv2d(c_in, c_out, s, k, padding=padding, interp_mode=interp, method="direct")
    return conv.double()


def _at_scales(stack: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    if idx.dim() == 2:
        idx = idx[:, :, None, None].expand(-1, -1, *stack.shape[3:])
    return stack.gather(2, idx.unsqueeze(2)).squeeze(2)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("mode", POOL_MODES)
def test_sparse_grads_equal_autograd_of_the_direct_definition(shape, padding, mode):
    """A handful of non-zero pooled gradients (border pixels included), float64:
    the gradients of ``pool(conv.forward_direct(x))`` to rounding."""
    c_in, c_out, h, w, k, b, interp = shape
    conv = _layer(c_in, c_out, h, w, k, interp, padding)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(b, c_in, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    pool = ScalePool(mode)
    stack = conv.forward_direct(x)
    pool(stack.detach())
    pooled = _at_scales(stack, pool.indices)
    g = torch.zeros_like(pooled)
    picks = torch.randint(0, g.numel(), (9,), generator=gen)
    g.view(-1)[picks] = torch.randn(9, generator=gen, dtype=g.dtype)
    g[0, 0, 0, 0] = 1.5  # a corner: on the zero border of every scale but the first
    expected = torch.autograd.grad(pooled, (x, conv.weights, conv.bias), g)
    cfg = conv_config(conv)
    assert cfg == ConvConfig(k, conv.num_scales, interp, padding)
    got = sparse_pool_grads(
        cfg, x.detach(), conv.weights.detach(), g, pool.indices, (True, True, True)
    )
    for a, e in zip(got, expected, strict=True):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


def test_only_the_needed_gradients_are_computed():
    conv = _layer(2, 3, 13, 15, 3, "bicubic", False)
    x = torch.randn(2, 2, 13, 15, dtype=torch.float64)
    idx = torch.zeros(2, 3, dtype=torch.long)
    g = torch.zeros(2, 3, 11, 13, dtype=torch.float64)
    g[1, 2, 4, 5] = 1.0
    gx, gw, gb = sparse_pool_grads(
        ConvConfig(3, 6, "bicubic", False), x, conv.weights, g, idx, (0, 1, 0)
    )
    assert gx is None and gb is None
    # scale 0 (the base kernel itself): the weight's gradient is the input patch
    torch.testing.assert_close(gw[2], x[1, :, 4:7, 5:8])
    assert not gw[:2].any()


def test_the_choice_counts_the_products_of_the_chosen_scales():
    cfg = ConvConfig(7, 26, "bicubic", False)  # the paper's second layer: kernels up to 57×57
    g = torch.zeros(16, 32, 52, 52)
    g[:, :, 30, 30] = 1.0  # one entry per (image, channel): 512
    small, large = torch.zeros(16, 32, dtype=torch.long), torch.full((16, 32), 25)
    # 512 × 16 × 7² = 0.4 M products at the smallest scale, 26.6 M at the largest
    for mode in ("slice", "energy"):
        assert use_sparse_pool_backward(g, small, 16, cfg, mode)
        assert not use_sparse_pool_backward(g, large, 16, cfg, mode)
    pixel_large = large[:, :, None, None].expand(16, 32, 52, 52)
    assert use_sparse_pool_backward(g, pixel_large, 16, cfg, "pixel")  # ≤ 2^25
    g[:, :, :8] = 1.0  # a dense gradient
    assert not use_sparse_pool_backward(g, small, 16, cfg, "slice")


@pytest.mark.parametrize("name", ["pixel_pool", "slice_pool", "energy_pool"])
def test_models_take_the_sparse_route_in_stage_two_with_the_same_gradients(name, monkeypatch):
    """ReLU and a global maximum follow stage 2: its backward is sparse, stage 1's is not
    (the gradient that reaches it is dense); gradients equal the frequency-domain ones."""
    calls = []
    original = fused_pool.sparse_pool_grads

    def spy(*args):
        calls.append(args[3].count_nonzero().item())
        return original(*args)

    x = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    y = torch.arange(4)
    grads = []
    monkeypatch.setattr(fused_pool, "sparse_pool_grads", spy)
    for switch in ("auto", "off"):
        torch.manual_seed(0)
        model = build_model(name, kernel_size=7, interpolation="bicubic")
        with fastpath(sparse_pool_backward=switch):
            F.cross_entropy(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    assert len(calls) == 1 and 0 < calls[0] <= 4 * 32
    for got, expected in zip(*grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())
