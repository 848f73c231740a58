"""The FFT fast path of SiConv2d against its direct definition (correctness only, no timing)."""

from __future__ import annotations

import pytest
import torch

from scalecnn.layers import INTERP_MODES, SiConv2d, interpolate_kernel
from scalecnn.layers import fft as fft_path
from scalecnn.layers.interpolation import interpolation_matrix_1d
from scalecnn.layers.siconv import expected_num_scales

RTOL = 1e-4  # max |fast − direct| ≤ RTOL · max |direct|


def _assert_close(fast: torch.Tensor, direct: torch.Tensor, what: str) -> None:
    assert fast.shape == direct.shape, what
    assert fast.dtype == direct.dtype, what
    err = (fast - direct).abs().max().item()
    scale = direct.abs().max().item()
    assert err <= RTOL * scale, f"{what}: max error {err:.3g} vs max |direct| {scale:.3g}"


def _compare(layer: SiConv2d, x: torch.Tensor, input_grad: bool = True) -> None:
    """Outputs and gradients (input, weights, bias) of both paths for one random upstream grad."""
    x = x.clone().requires_grad_(input_grad)
    params = (layer.weights, layer.bias)
    wrt = ((x,) if input_grad else ()) + params
    direct = layer.forward_direct(x)
    grad_out = torch.randn_like(direct)
    grads_direct = torch.autograd.grad(direct, wrt, grad_out)
    fast = fft_path.siconv2d_fft(layer, x)
    grads_fast = torch.autograd.grad(fast, wrt, grad_out)
    _assert_close(fast, direct, "output")
    names = (("input",) if input_grad else ()) + ("weights", "bias")
    for name, gf, gd in zip(names, grads_fast, grads_direct, strict=True):
        _assert_close(gf, gd, f"grad {name}")


def _layer(cin: int, cout: int, h: int, w: int, k: int, **kw: object) -> SiConv2d:
    return SiConv2d(cin, cout, expected_num_scales(h, w, k), k, **kw)


@pytest.mark.parametrize("mode", INTERP_MODES)
@pytest.mark.parametrize("k,t", [(3, 3), (3, 5), (3, 13), (4, 10), (5, 7), (7, 21), (7, 63)])
def test_interpolation_matrix_identity(mode: str, k: int, t: int) -> None:
    """interpolate_kernel(w, t) == A w Aᵀ · k²/t² with A = interpolation_matrix_1d(k, t, mode)."""
    torch.manual_seed(0)
    w = torch.randn(3, 2, k, k, dtype=torch.float64)
    a = interpolation_matrix_1d(k, t, mode)
    assert a.shape == (t, k) and a.dtype == torch.float64
    expected = interpolate_kernel(w, t, mode)
    got = torch.einsum("ip,ocpq,jq->ocij", a, w, a) * (k * k) / (t * t)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


SMALL_SHAPES = [
    # (C_in, C_out, H, W, k, batch): odd sizes, non-square, one input channel, even kernel
    (2, 3, 13, 15, 3, 2),
    (2, 3, 13, 15, 5, 2),
    (1, 4, 15, 13, 3, 2),
    (3, 2, 12, 15, 4, 2),
]


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("mode", INTERP_MODES)
def test_fft_matches_direct_small(mode: str, padding: bool, device: str) -> None:
    torch.manual_seed(1)
    for cin, cout, h, w, k, batch in SMALL_SHAPES:
        layer = _layer(cin, cout, h, w, k, padding=padding, interp_mode=mode).to(device)
        _compare(layer, torch.randn(batch, cin, h, w, device=device))


def test_fft_matches_direct_float64() -> None:
    torch.manual_seed(2)
    layer = _layer(2, 3, 13, 15, 3, interp_mode="bicubic").double()
    x = torch.randn(2, 2, 13, 15, dtype=torch.float64, requires_grad=True)
    direct = layer.forward_direct(x)
    fast = fft_path.siconv2d_fft(layer, x)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, direct, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", INTERP_MODES)
def test_fft_matches_direct_paper_layer1(mode: str, device: str) -> None:
    """Layer 1 of the paper: 1 → 16 channels, 64×64, 29 scales, k = 7 (batch 1)."""
    torch.manual_seed(3)
    layer = SiConv2d(1, 16, 29, 7, interp_mode=mode).to(device)
    _compare(layer, torch.randn(1, 1, 64, 64, device=device), input_grad=False)


def test_fft_matches_direct_paper_layer2(device: str) -> None:
    """Layer 2 of the paper: 16 → 32 channels, 58×58, 26 scales, k = 7 (small batch)."""
    torch.manual_seed(4)
    layer = SiConv2d(16, 32, 26, 7, interp_mode="bicubic").to(device)
    _compare(layer, torch.randn(2, 16, 58, 58, device=device).relu())


def test_no_grad_and_inputs_without_grad() -> None:
    torch.manual_seed(5)
    layer = _layer(3, 4, 14, 14, 3, interp_mode="nearest", method="fft")
    x = torch.randn(2, 3, 14, 14)
    with torch.no_grad():
        out = layer(x)
    _assert_close(out, layer.forward_direct(x).detach(), "no-grad output")
    layer(x).sum().backward()  # input needs no grad: only parameter grads
    assert layer.weights.grad is not None and layer.bias.grad is not None


def test_method_forces_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = fft_path.siconv2d_fft

    def spy(layer: SiConv2d, x: torch.Tensor) -> torch.Tensor:
        calls.append("fft")
        return real(layer, x)

    monkeypatch.setattr(fft_path, "siconv2d_fft", spy)
    x = torch.randn(1, 2, 13, 13)
    direct = _layer(2, 3, 13, 13, 3, method="direct")
    fft = _layer(2, 3, 13, 13, 3, method="fft")
    fft.load_state_dict(direct.state_dict())
    assert direct.resolved_method(x) == "direct" and fft.resolved_method(x) == "fft"
    out_direct = direct(x)
    assert calls == []
    out_fft = fft(x)
    assert calls == ["fft"]
    _assert_close(out_fft, out_direct, "forced paths")
    with pytest.raises(ValueError, match="method"):
        SiConv2d(1, 1, 1, 3, method="winograd")


def test_auto_picks_fft_at_paper_shapes() -> None:
    layer1 = SiConv2d(1, 16, 29, 7, interp_mode="bicubic")
    layer2 = SiConv2d(16, 32, 26, 7, interp_mode="bicubic")
    assert layer1.method == "auto"
    assert layer1.resolved_method(torch.empty(16, 1, 64, 64)) == "fft"
    assert layer2.resolved_method(torch.empty(16, 16, 58, 58, requires_grad=True)) == "fft"
    assert layer2.resolved_method(torch.empty(16, 16, 58, 58)) == "fft"
    with torch.no_grad():  # inference uses the forward-only cost model
        assert layer1.resolved_method(torch.empty(16, 1, 64, 64)) == "fft"
        assert layer2.resolved_method(torch.empty(16, 16, 58, 58)) == "fft"
    # a tiny layer (one input channel, 3 small scales) stays direct
    tiny = SiConv2d(1, 16, 3, 7)
    assert tiny.resolved_method(torch.empty(16, 1, 11, 11)) == "direct"


def test_stride_is_not_supported_by_fft() -> None:
    layer = SiConv2d(2, 3, 6, 3, stride=2, method="fft")
    x = torch.randn(1, 2, 13, 13)
    assert not fft_path.is_faster(layer, x)
    assert SiConv2d(2, 3, 6, 3, stride=2).resolved_method(x) == "direct"
    with pytest.raises(NotImplementedError, match="stride"):
        layer(x)


def test_next_fast_len() -> None:
    assert [fft_path.next_fast_len(n) for n in (1, 7, 58, 64, 86, 95)] == [1, 8, 60, 64, 90, 96]
