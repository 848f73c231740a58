"""The spatial-domain path of the plain convolutions (scalecnn.layers.fft.direct)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import scalecnn.layers.fft.conv as conv_module
import scalecnn.layers.fft.direct as direct
import scalecnn.layers.fft.sparse_grad as sparse_grad
import scalecnn.layers.kanazawa as kanazawa_module
from scalecnn.layers.fft import FastConv2d, conv_nd, direct_conv, nnpack_is_faster
from scalecnn.models import build_model

NNPACK = direct._nnpack_ready()
needs_nnpack = pytest.mark.skipif(not NNPACK, reason="this PyTorch has no NNPACK")


@pytest.fixture
def avx2(monkeypatch):
    """Decide as on the AVX2 CPU the rule was measured on."""
    monkeypatch.setattr(direct, "_cpu_capability", lambda: "AVX2")


def _leaves(*shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).requires_grad_() for s in shapes]


def _close(got, expected):
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())


@pytest.mark.parametrize(
    "xshape, wshape, groups, nnpack",
    [
        ((16, 16, 20, 20), (32, 16, 7, 7), 1, True),
        ((2, 1, 20, 20), (4, 1, 9, 9), 1, True),
        ((2, 1, 20, 20), (4, 1, 7, 7), 1, False),  # few input channels: oneDNN
        ((2, 16, 20, 20), (8, 16, 3, 3), 1, False),  # 3×3: oneDNN
        ((2, 16, 20, 20), (8, 16, 13, 13), 1, False),  # beyond NNPACK's 16×16 tiles
        ((2, 16, 20, 20), (8, 8, 7, 7), 2, False),  # groups: NNPACK has none
    ],
)
def test_the_kernel_choice(xshape, wshape, groups, nnpack, avx2):
    x, w = torch.zeros(xshape), torch.zeros(wshape)
    assert nnpack_is_faster(x, w, groups) is (nnpack and NNPACK)


def test_no_nnpack_for_double_precision_avx512_or_3d(avx2, monkeypatch):
    w = torch.zeros(8, 16, 7, 7)
    assert not nnpack_is_faster(torch.zeros(2, 16, 20, 20, dtype=torch.float64), w.double())
    assert not nnpack_is_faster(torch.zeros(2, 16, 5, 20, 20), torch.zeros(8, 16, 3, 7, 7))
    monkeypatch.setattr(direct, "_cpu_capability", lambda: "AVX512")
    assert not nnpack_is_faster(torch.zeros(2, 16, 20, 20), w)


@needs_nnpack
@pytest.mark.parametrize("padding", [0, 3, (2, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_nnpack_forward_and_gradients_equal_f_conv2d(padding, with_bias, avx2):
    """A dense output gradient (the library's backward) through NNPACK's forward."""
    x, w, b = _leaves((16, 16, 15, 13), (8, 16, 7, 7), (8,))
    b = b if with_bias else None
    assert nnpack_is_faster(x, w)
    y = direct_conv(x, w, b, padding)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b if with_bias else w))
    y2 = F.conv2d(x2, w2, b2 if with_bias else None, padding=padding)
    _close(y.detach(), y2.detach())
    g = torch.randn_like(y2)
    y.backward(g)
    y2.backward(g)
    _close(x.grad, x2.grad)
    _close(w.grad, w2.grad)
    if with_bias:
        _close(b.grad, b2.grad)


def _spy_sparse(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].count_nonzero().item())
        return sparse_grad_original(*args, **kwargs)

    sparse_grad_original = sparse_grad.sparse_conv_grads
    monkeypatch.setattr(sparse_grad, "sparse_conv_grads", spy)
    return calls


@pytest.mark.parametrize("wshape", [(8, 16, 7, 7), (8, 16, 3, 3)])
def test_a_global_max_after_the_convolution_takes_the_sparse_route(wshape, avx2, monkeypatch):
    """ReLU and a global maximum follow (standard's second layer): one entry per
    (image, channel) reaches the convolution; gradients equal F.conv2d's."""
    calls = _spy_sparse(monkeypatch)
    results = []
    for conv in (direct_conv, F.conv2d):
        x, w, b = _leaves((16, 16, 24, 24), wshape, (8,))
        y = conv(x, w, b)
        torch.relu(y).flatten(2).amax(dim=2).square().sum().backward()
        results.append((x.grad, w.grad, b.grad))
    assert len(calls) == 1 and 0 < calls[0] <= 16 * 8
    for got, expected in zip(*results, strict=True):
        _close(got, expected)


def test_a_thinned_dense_gradient_takes_the_library_backward(monkeypatch):
    """Half the entries non-zero (a ReLU's gradient): far above SPARSE_MAX_DENSITY."""
    calls = _spy_sparse(monkeypatch)
    x, w = _leaves((4, 8, 20, 20), (8, 8, 5, 5))
    torch.relu(direct_conv(x, w)).sum().backward()
    assert calls == []
    x2, w2 = (t.detach().clone().requires_grad_() for t in (x, w))
    torch.relu(F.conv2d(x2, w2)).sum().backward()
    _close(x.grad, x2.grad)
    _close(w.grad, w2.grad)


def test_repeated_steps_are_bit_identical(avx2):
    grads = []
    for _ in range(2):
        x, w, b = _leaves((16, 16, 20, 20), (8, 16, 7, 7), (8,))
        torch.relu(direct_conv(x, w, b, 3)).flatten(2).amax(dim=2).sum().backward()
        grads.append((x.grad, w.grad, b.grad))
    for a, b_ in zip(*grads, strict=True):
        assert torch.equal(a, b_)


def test_inference_records_no_graph():
    x, w = _leaves((2, 16, 12, 12), (4, 16, 7, 7))
    with torch.no_grad():
        assert direct_conv(x, w).grad_fn is None
    assert direct_conv(x, w).grad_fn is not None


def test_fast_conv2d_is_an_nn_conv2d_with_the_same_state_and_results():
    torch.manual_seed(0)
    fast = FastConv2d(16, 8, 7, padding=3)
    plain = nn.Conv2d(16, 8, 7, padding=3)
    plain.load_state_dict(fast.state_dict())
    assert fast.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(16, 16, 20, 20)
    with torch.no_grad():
        _close(fast(x), plain(x))
    strided = FastConv2d(16, 8, 7, stride=2)  # not this path: nn.Conv2d itself
    strided.load_state_dict(nn.Conv2d(16, 8, 7, stride=2).state_dict())
    assert strided(x).shape == (16, 8, 7, 7)


def test_conv_nd_auto_prefers_nnpack_over_the_fft_for_11x11(avx2, monkeypatch):
    """Xu's 11×11 column: the FFT path is not called when NNPACK's forward is faster."""
    used = []
    monkeypatch.setattr(conv_module, "fft_conv", lambda *a, **k: used.append("fft"))
    x, w = torch.randn(4, 16, 20, 20), torch.randn(8, 16, 11, 11)
    conv_nd(x, w, None, 5)
    assert used == ([] if NNPACK else ["fft"])


@pytest.mark.parametrize("name", ["standard", "xu", "kanazawa"])
def test_models_train_the_same_with_the_plain_library_convolution(name, monkeypatch):
    """One step's gradients equal those with every direct convolution plain F.conv2d."""
    x = torch.randn(16, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    y = torch.arange(16) % 36
    grads = []
    for patched in (False, True):
        if patched:
            plain = lambda x, w, b=None, padding=0, groups=1: F.conv2d(  # noqa: E731
                x, w, b, padding=padding, groups=groups
            )
            for module in (conv_module, kanazawa_module, direct):
                monkeypatch.setattr(module, "direct_conv", plain)
        torch.manual_seed(0)
        model = build_model(name, kernel_size=7, interpolation="bicubic")
        F.cross_entropy(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    for got, expected in zip(*grads, strict=True):
        _close(got, expected)
