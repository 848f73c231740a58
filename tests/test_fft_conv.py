"""The FFT convolution path (scalecnn.layers.fft.conv) against torch's direct convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scalecnn.layers.fft import AutoConv3d, conv_nd, fft_conv, fft_is_faster
from scalecnn.layers.fft.conv import _fft_lengths, _kernel_spectra
from scalecnn.layers.steerable import SESConv_H_H, SESConv_Z2_H
from scalecnn.layers.xu import XuConv2d
from scalecnn.models import build_model

TOL = 1e-4  # max |fast − direct| ≤ TOL · max |direct|, outputs and every gradient


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _outputs_and_grads(fn, *tensors: torch.Tensor, seed: int = 0):
    """fn(*tensors) and the gradients of <fn(...), g> w.r.t. each tensor (g fixed by seed)."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(*leaves)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    y.backward(g.to(y.device))
    return [y.detach()] + [t.grad for t in leaves]


CASES = [
    # (input shape, weight shape, padding, groups, bias)
    ((2, 3, 12, 11), (5, 3, 4, 3), 0, 1, True),
    ((2, 4, 12, 11), (6, 2, 5, 3), (2, 1), 2, True),
    ((2, 10, 16, 16), (20, 2, 11, 11), 5, 5, False),  # Xu's layer 2, scaled down
    ((2, 1, 20, 20), (8, 1, 15, 15), 0, 1, False),  # steerable layer 1, scaled down
    ((2, 4, 9, 12, 11), (6, 4, 3, 5, 4), 0, 1, True),  # 3-D
    ((2, 4, 7, 8, 9), (6, 2, 3, 3, 5), (1, 2, 0), 2, True),  # 3-D, padding, groups
    ((1, 3, 11, 6, 7), (4, 3, 3, 3, 3), (2, 1, 1), 1, True),  # leading DFT length 13 (prime)
]


@pytest.mark.parametrize("xshape, wshape, padding, groups, bias", CASES)
def test_fft_conv_matches_direct_forward_and_backward(
    xshape, wshape, padding, groups, bias, device
):
    torch.manual_seed(0)
    x = torch.randn(xshape, device=device)
    w = torch.randn(wshape, device=device)
    b = torch.randn(wshape[0], device=device)
    direct = F.conv3d if len(xshape) == 5 else F.conv2d
    args = (x, w, b) if bias else (x, w)

    def run_direct(x, w, b=None):
        return direct(x, w, b, padding=padding, groups=groups)

    def run_fft(x, w, b=None):
        return fft_conv(x, w, b, padding, groups)

    expected = _outputs_and_grads(run_direct, *args)
    got = _outputs_and_grads(run_fft, *args)
    assert got[0].shape == expected[0].shape
    for g, e in zip(got, expected, strict=True):
        assert _rel_err(g, e) <= TOL


def test_transform_lengths_round_only_the_fft_dimensions():
    """The leading dimension's DFT is a matrix product: its length stays ``N + p``
    (29 for conv3d's scales); the rfft2 dimensions round up to 2·3·5-smooth lengths."""
    assert _fft_lengths((29, 58, 58), (7, 7, 7), (0, 0, 0)) == (29, 60, 60)
    assert _fft_lengths((11, 6, 7), (3, 3, 3), (2, 1, 1)) == (13, 8, 8)
    assert _fft_lengths((58, 58), (11, 11), (5, 5)) == (64, 64)


@pytest.mark.parametrize(
    "wshape, lengths, padding",
    [
        ((6, 3, 5, 4), (12, 15), (1, 3)),  # shifted by the padding, odd FFT width
        ((128, 16, 15, 15), (50, 50), (0, 0)),  # hermite's layer 2
        ((4, 2, 3, 5, 4), (9, 10, 8), (1, 2, 0)),  # 3-D: the leading dimension is kept
    ],
)
def test_kernel_spectra_equal_the_fft_of_the_placed_kernel(wshape, lengths, padding):
    """The DFT-matrix spectra equal torch's rfft2 of the kernel zero-padded to the grid,
    rolled by −padding and moved channel-last, conjugated (float64, to rounding)."""
    torch.manual_seed(0)
    w = torch.randn(wshape, dtype=torch.float64)
    dims = w.dim() - 2
    (l1, l2), (p1, p2) = lengths[-2:], padding[-2:]
    grid = torch.zeros(*w.shape[:-2], l1, l2, dtype=torch.float64)
    grid[..., : w.shape[-2], : w.shape[-1]] = w
    grid = torch.roll(grid, shifts=(-p1, -p2), dims=(-2, -1))
    expected = torch.fft.rfft2(grid).conj().permute(*range(2, 2 + dims), 1, 0)
    got = _kernel_spectra(w, lengths, padding)
    assert got.shape == (*w.shape[2:-2], l1, l2 // 2 + 1, w.shape[1], w.shape[0])
    assert _rel_err(got, expected) < 1e-12


def test_fft_conv_at_conv3d_shape_in_float64_is_exact():
    """conv3d's layer at a reduced batch, float64: agreement to rounding level."""
    torch.manual_seed(1)
    x = torch.randn(1, 16, 29, 58, 58, dtype=torch.float64)
    w = torch.randn(32, 16, 7, 7, 7, dtype=torch.float64)
    b = torch.randn(32, dtype=torch.float64)
    got, expected = fft_conv(x, w, b), F.conv3d(x, w, b)
    assert got.shape == (1, 32, 23, 52, 52)
    assert _rel_err(got, expected) < 1e-10


def test_fft_conv_rejects_bad_shapes_with_clear_errors():
    with pytest.raises(ValueError, match="2 or 3 spatial"):
        fft_conv(torch.zeros(1, 2, 8), torch.zeros(3, 2, 3))
    with pytest.raises(ValueError, match="groups=2"):
        fft_conv(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3, 3), groups=2)
    with pytest.raises(ValueError, match="larger than the input"):
        fft_conv(torch.zeros(1, 2, 4, 4), torch.zeros(3, 2, 5, 5))
    with pytest.raises(ValueError, match="method must be one of"):
        conv_nd(torch.zeros(1, 2, 8, 8), torch.zeros(3, 2, 3, 3), method="winograd")


def test_auto_picks_fft_for_large_kernels_on_cpu_only():
    x = torch.zeros(1, 1, 32, 32)
    assert fft_is_faster(torch.zeros(1, 4, 32, 32), torch.zeros(4, 4, 11, 11))
    assert not fft_is_faster(x, torch.zeros(4, 1, 11, 11))  # one input channel: direct
    assert fft_is_faster(torch.zeros(1, 4, 9, 9, 9), torch.zeros(4, 4, 7, 7, 7))
    assert not fft_is_faster(torch.zeros(1, 4, 32, 32), torch.zeros(4, 4, 7, 7))  # 7×7: direct
    assert not fft_is_faster(torch.zeros(1, 1, 32, 32, device="meta"), torch.zeros(4, 1, 11, 11))


def test_auto_conv3d_is_a_drop_in_conv3d():
    torch.manual_seed(0)
    reference = nn.Conv3d(4, 6, 3, padding=1)
    fast = AutoConv3d(4, 6, 3, padding=1, method="fft")
    fast.load_state_dict(reference.state_dict())  # same keys both ways
    assert set(fast.state_dict()) == {"weight", "bias"}
    x = torch.randn(2, 4, 5, 6, 7)
    assert _rel_err(fast(x), reference(x)) <= TOL
    strided = AutoConv3d(4, 6, 3, stride=2)  # unsupported by the FFT path: direct
    assert strided.method == "direct"
    with pytest.raises(ValueError, match="stride 1"):
        AutoConv3d(4, 6, 3, stride=2, method="fft")


def _layer_pair(make):
    """The same layer built twice, forced to the direct and to the FFT path."""
    torch.manual_seed(0)
    direct = make("direct")
    fast = make("fft")
    fast.load_state_dict(direct.state_dict())
    return direct, fast


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda m: XuConv2d(1, 4, 7, method=m), (2, 1, 24, 24)),
        (lambda m: XuConv2d(2, 3, 7, groups=5, method=m), (2, 10, 20, 20)),
        (lambda m: SESConv_Z2_H(1, 3, torch.randn(6, 4, 9, 9), method=m), (2, 1, 20, 20)),
        (lambda m: SESConv_H_H(3, 2, 1, torch.randn(6, 4, 9, 9), method=m), (2, 3, 4, 16, 16)),
        (lambda m: SESConv_H_H(3, 2, 2, torch.randn(6, 4, 9, 9), method=m), (2, 3, 4, 16, 16)),
    ],
)
def test_layers_fft_path_equals_direct_path(make, shape):
    direct, fast = _layer_pair(make)
    x = torch.randn(shape)
    expected = _outputs_and_grads(direct, x)
    got = _outputs_and_grads(fast, x)
    for g, e in zip(got, expected, strict=True):
        assert _rel_err(g, e) <= TOL
    params = dict(fast.named_parameters())
    for name, p in direct.named_parameters():
        assert _rel_err(params[name].grad, p.grad) <= TOL


@pytest.mark.parametrize("name", ["conv3d", "xu", "hermite"])
def test_models_fast_path_equals_direct_path_at_paper_shapes(name):
    """Whole models at 64×64 (batch 2): logits and all parameter gradients agree."""
    torch.manual_seed(0)
    model = build_model(name, kernel_size=7, interpolation="bicubic", num_channels=1, num_classes=5)
    x = torch.randn(2, 1, 64, 64)
    results = {}
    for method in ("direct", "fft"):
        for module in model.modules():
            if isinstance(module, AutoConv3d | XuConv2d | SESConv_Z2_H | SESConv_H_H):
                module.method = method
        model.zero_grad()
        y = model(x)
        y.square().sum().backward()
        results[method] = [y.detach()] + [p.grad.clone() for p in model.parameters()]
    for g, e in zip(results["fft"], results["direct"], strict=True):
        assert _rel_err(g, e) <= TOL


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("groups, in_channels", [(1, 3), (5, 10)])
def test_xu_columns_apart_equal_the_padded_definition(method, groups, in_channels):
    """Per-column convolutions with t × t kernels = one convolution with the T × T kernels."""
    torch.manual_seed(0)
    layer = XuConv2d(in_channels // groups, 4, 7, groups=groups, method=method)
    assert layer._columns_apart()
    x = torch.randn(2, in_channels, 18, 18)

    def definition(x):
        return F.conv2d(x, layer.column_kernels(), padding=layer.padding, groups=groups)

    expected = _outputs_and_grads(definition, x)
    layer.zero_grad()
    expected_w = torch.autograd.grad(definition(x).square().sum(), layer.weight)[0]
    got = _outputs_and_grads(layer, x)
    got_w = torch.autograd.grad(layer(x).square().sum(), layer.weight)[0]
    for g, e in zip(got + [got_w], expected + [expected_w], strict=True):
        assert _rel_err(g, e) <= TOL


def test_xu_even_differences_fall_back_to_the_padded_kernel():
    layer = XuConv2d(2, 3, 4, column_sizes=(4, 5))
    assert not layer._columns_apart()
    assert layer(torch.randn(1, 2, 12, 12)).shape == (1, 6, 12, 12)
