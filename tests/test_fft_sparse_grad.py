"""The sparse backward of the FFT convolution (scalecnn.layers.fft.sparse_grad)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scalecnn.layers.fft.sparse_grad as sparse_grad
from scalecnn.layers.fft import fft_conv
from scalecnn.layers.fft.sparse_grad import sparse_conv_grads, use_sparse_backward

CASES = [
    # (input shape, weight shape, padding, groups)
    ((2, 3, 12, 11), (5, 3, 4, 3), (0, 0), 1),
    ((2, 4, 12, 11), (6, 2, 5, 3), (2, 1), 2),
    ((2, 4, 9, 12, 11), (6, 4, 3, 5, 4), (0, 0, 0), 1),
    ((2, 4, 7, 8, 9), (6, 2, 3, 3, 5), (1, 2, 0), 2),
]


def _direct(x, w, b, padding, groups):
    conv = F.conv3d if x.dim() == 5 else F.conv2d
    return conv(x, w, b, padding=padding, groups=groups)


def _leaves(*shapes, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


@pytest.mark.parametrize("xshape, wshape, padding, groups", CASES)
def test_sparse_grads_equal_autograd_of_the_direct_convolution(xshape, wshape, padding, groups):
    """A handful of random non-zero output gradients, float64: agreement to rounding."""
    x, w, b = _leaves(xshape, wshape, (wshape[0],))
    y = _direct(x, w, b, padding, groups)
    gen = torch.Generator().manual_seed(1)
    g = torch.zeros_like(y)
    picks = torch.randint(0, y.numel(), (7,), generator=gen)
    g.view(-1)[picks] = torch.randn(7, generator=gen, dtype=y.dtype)
    expected = torch.autograd.grad(y, (x, w, b), g)
    got = sparse_conv_grads(g, x.detach(), w.detach(), padding, groups, (True, True, True))
    for a, e in zip(got, expected, strict=True):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


def test_only_the_needed_gradients_are_computed():
    x, w = _leaves((1, 2, 6, 6), (3, 2, 3, 3))
    g = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    g[0, 1, 2, 3] = 1.0
    gx, gw, gb = sparse_conv_grads(g, x.detach(), w.detach(), (0, 0), 1, (False, True, False))
    assert gx is None and gb is None
    # one entry at output (2, 3): the weight's gradient is the input patch under it
    torch.testing.assert_close(gw[1], x.detach()[0, :, 2:5, 3:6])
    assert not gw[0].any() and not gw[2].any()


def _spy_sparse(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].count_nonzero().item())
        return sparse_conv_grads(*args, **kwargs)

    monkeypatch.setattr(sparse_grad, "sparse_conv_grads", spy)
    return calls


@pytest.mark.parametrize("xshape, wshape, padding, groups", CASES)
def test_fft_conv_followed_by_a_global_max_takes_the_sparse_route(
    xshape, wshape, padding, groups, monkeypatch
):
    """ReLU and a global maximum after the convolution (conv3d's head): the gradient
    reaches one position per (image, channel); the result equals the direct path's."""
    calls = _spy_sparse(monkeypatch)
    results = []
    for conv in (_direct, fft_conv):
        x, w, b = _leaves(xshape, wshape, (wshape[0],), dtype=torch.float32)
        y = conv(x, w, b, padding, groups)
        torch.relu(y).flatten(2).amax(dim=2).square().sum().backward()
        results.append((y.detach(), x.grad, w.grad, b.grad))
    assert len(calls) == 1 and 0 < calls[0] <= xshape[0] * wshape[0]
    for got, expected in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


def test_a_dense_gradient_takes_the_fft_backward(monkeypatch):
    """32,768 non-zero entries × 16 channels × 125 kernel values > SPARSE_WORK_LIMIT."""
    calls = _spy_sparse(monkeypatch)
    shapes = (2, 16, 12, 20, 20), (8, 16, 5, 5, 5)
    x, w = _leaves(*shapes, dtype=torch.float32)
    fft_conv(x, w).sum().backward()
    assert calls == []
    x2, w2 = _leaves(*shapes, dtype=torch.float32)
    F.conv3d(x2, w2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4 * x2.grad.abs().max())
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-4, atol=1e-4 * w2.grad.abs().max())


def test_the_choice_counts_non_zero_products_on_the_cpu_only():
    w = torch.zeros(32, 16, 7, 7, 7)  # 5,488 products per non-zero entry
    g = torch.zeros(16, 32, 23, 52, 52)
    g[:, :, 0, 0, 0] = 1.0  # conv3d at batch 16: 512 entries
    assert use_sparse_backward(g, w)
    g[:, :, :4] = 1.0  # 4·52·52 per channel pair: a dense gradient
    assert not use_sparse_backward(g, w)


def test_sparse_backward_is_deterministic():
    grads = []
    for _ in range(2):
        x, w, b = _leaves((3, 4, 9, 20, 20), (8, 4, 7, 7, 7), (8,), dtype=torch.float32)
        torch.relu(fft_conv(x, w, b)).flatten(2).amax(dim=2).sum().backward()
        grads.append((x.grad, w.grad, b.grad))
    for a, b_ in zip(*grads, strict=True):
        assert torch.equal(a, b_)


def test_inference_records_no_graph():
    x, w = _leaves((1, 2, 5, 8, 8), (3, 2, 3, 3, 3), dtype=torch.float32)
    with torch.no_grad():
        y = fft_conv(x, w)
    assert y.grad_fn is None
    assert fft_conv(x, w).grad_fn is not None
