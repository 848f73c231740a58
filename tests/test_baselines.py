"""Baseline layers (Xu, Kanazawa, steerable), the Hermite basis and the six baseline models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.geometry import build_pyramid

from scalecnn.bases import hermite_basis, hermite_matrix, normalize_basis
from scalecnn.layers.kanazawa import KanazawaConv2d, center_pad_crop
from scalecnn.layers.steerable import SESConv_H_H, SESConv_Z2_H
from scalecnn.layers.xu import ColumnMaxPool, XuConv2d
from scalecnn.models import build_model, get_spec

BASELINES = ("ensemble", "spatial_transform", "xu", "kanazawa", "hermite", "disco")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def stand_in_basis() -> torch.Tensor:
    """Deterministic stand-in for the optimised DISCO basis: hermite_b at DISCO's scales."""
    return hermite_basis(scales=(1.0, 1.26, 1.59, 2.0))


# --------------------------------------------------------------------------- Xu


def _interp_1d_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out, n_in) map of 1-D nearest (floor(i·n_in/n_out)) or linear align_corners=True."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        if mode == "nearest":
            m[i, min(math.floor(i * n_in / n_out), n_in - 1)] = 1.0
        else:
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            lo = min(math.floor(src), n_in - 1)
            hi = min(lo + 1, n_in - 1)
            frac = src - lo
            m[i, lo] += 1.0 - frac
            m[i, hi] += frac
    return m


def test_xu_column_kernels_match_hand_loop() -> None:
    k, out_c, in_c = 7, 2, 1
    layer = XuConv2d(in_c, out_c, k)
    w = layer.weight.detach().double().numpy()
    expected = []
    for t in (3, 5, 7, 9, 11):
        column = np.zeros((out_c, in_c, 11, 11))
        for o in range(out_c):
            for i in range(in_c):
                base = np.zeros((11, 11))
                base[2:9, 2:9] = w[o, i]  # 7×7 centred in 11×11
                if t == k:
                    scaled = base
                else:
                    a = _interp_1d_matrix(11, t, "nearest" if t > k else "linear")
                    small = a @ base @ a.T
                    scaled = np.zeros((11, 11))
                    off = (11 - t) // 2
                    scaled[off : off + t, off : off + t] = small
                column[o, i] = scaled * np.abs(base).sum() / np.abs(scaled).sum()
        expected.append(column)
    expected = np.concatenate(expected)  # column-major: index c·out + o
    got = layer.column_kernels().detach().double().numpy()
    assert got.shape == (5 * out_c, in_c, 11, 11)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    x = torch.rand(1, in_c, 12, 12)
    ref = F.conv2d(x.double(), torch.from_numpy(expected), padding=5)
    torch.testing.assert_close(layer(x).double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 7, 15])
def test_xu_l1_renormalisation(kernel_size: int) -> None:
    layer = XuConv2d(3, 4, kernel_size)
    kernels = layer.column_kernels().detach().view(5, 4, 3, 11, 11)
    padded = center_pad_crop(layer.weight.detach(), 11, 11)  # cropped for k = 15
    torch.testing.assert_close(
        kernels.abs().sum(dim=(-2, -1)), padded.abs().sum(dim=(-2, -1)).expand(5, 4, 3)
    )


def test_xu_grouped_layer_keeps_columns_apart() -> None:
    layer = XuConv2d(2, 3, 7, groups=5)
    x = torch.rand(1, 10, 16, 16)
    y = layer(x)
    assert y.shape == (1, 15, 16, 16)
    x2 = x.clone()
    x2[:, 0:2] += 1.0  # change column 0 of the input only
    diff = (layer(x2) - y).abs().amax(dim=(0, 2, 3)).view(5, 3)
    assert diff[0].min() > 0 and diff[1:].max() == 0
    pooled = ColumnMaxPool(5)(y)
    torch.testing.assert_close(pooled, y.view(1, 5, 3, 16, 16).amax(dim=1))


# ---------------------------------------------------------------------- Kanazawa


def test_center_pad_crop() -> None:
    x = torch.arange(25.0).view(1, 1, 5, 5)
    padded = center_pad_crop(x, 8, 8)  # 3 extra: 1 before, 2 after
    assert padded.shape == (1, 1, 8, 8) and padded[0, 0, 1, 1] == 0 and padded[0, 0, 2, 2] == 6
    cropped = center_pad_crop(x, 2, 2)  # 3 removed: 2 before, 1 after
    torch.testing.assert_close(cropped, x[:, :, 2:4, 2:4])


def test_kanazawa_unit_scale_is_plain_conv() -> None:
    layer = KanazawaConv2d(3, 4, 5, scales=(1.0,))
    x = torch.rand(2, 3, 20, 20)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, layer.bias))


def test_kanazawa_max_over_scales_dominates_unit_scale() -> None:
    layer = KanazawaConv2d(1, 4, 7)
    assert len(layer.scales) == 6
    np.testing.assert_allclose(layer.scales, [1.26**e for e in range(-2, 4)])
    x = torch.rand(2, 1, 64, 64)
    y = layer(x)
    assert y.shape == (2, 4, 58, 58)
    plain = F.conv2d(x, layer.weight, layer.bias)
    assert (y >= plain - 1e-6).all() and (y > plain + 1e-3).any()


# --------------------------------------------------------------------- steerable


def _slow_kernel(weight: torch.Tensor, basis: torch.Tensor, s: int) -> torch.Tensor:
    return torch.einsum("...f,fhw->...hw", weight, basis[:, s])


def test_ses_z2_h_matches_per_scale_loop() -> None:
    basis = torch.randn(6, 3, 5, 5)
    layer = SESConv_Z2_H(2, 4, basis)
    torch.nn.init.normal_(layer.bias)
    x = torch.rand(2, 2, 12, 12)
    y = layer(x)
    assert y.shape == (2, 4, 3, 8, 8)
    for s in range(3):
        ref = F.conv2d(x, _slow_kernel(layer.weight, basis, s), layer.bias)
        torch.testing.assert_close(y[:, :, s], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale_size", [1, 2])
def test_ses_h_h_matches_per_scale_loop(scale_size: int) -> None:
    basis = torch.randn(6, 3, 5, 5)
    layer = SESConv_H_H(2, 4, scale_size, basis)
    torch.nn.init.normal_(layer.bias)
    assert layer.weight.shape == (4, 2, scale_size, 6)
    x = torch.rand(2, 2, 3, 12, 12)
    y = layer(x)
    assert y.shape == (2, 4, 3, 8, 8)
    for s in range(3):
        ref = layer.bias.view(1, -1, 1, 1)
        for i in range(scale_size):
            if s + i < 3:  # zero beyond the last scale
                kernel = _slow_kernel(layer.weight[:, :, i], basis, s)
                ref = ref + F.conv2d(x[:, :, s + i], kernel)
        torch.testing.assert_close(y[:, :, s], ref, rtol=1e-5, atol=1e-5)


def test_ses_init_and_basis_buffer() -> None:
    basis = torch.randn(6, 3, 5, 5)
    layer = SESConv_Z2_H(2, 4, basis)
    assert torch.equal(layer.bias, torch.zeros(4))
    bound = 1.0 / math.sqrt(2 * 6)  # kaiming_uniform_(a=√5) on fan_in = in·F
    assert layer.weight.abs().max() <= bound
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert torch.equal(layer.basis, basis)
    # the paper's checkpoints store the basis as "<prefix>basis.basis"
    state = {"weight": layer.weight.detach() * 2, "bias": layer.bias.detach(), "basis.basis": basis}
    layer.load_state_dict(state)
    torch.testing.assert_close(layer.weight.detach(), state["weight"])


# ------------------------------------------------------------------------ bases


def _reference_hermite(size: int, sigma: float, mult: float, count: int) -> np.ndarray:
    """Independent numpy construction of the first ``count`` functions (order ≤ 4)."""
    from numpy.polynomial.hermite_e import hermeval

    grid = np.arange(size) - size // 2
    out = []
    j = 0
    while len(out) < count:
        s = sigma / mult**j
        for b in range(5):
            for a in range(5 - b):
                ga = np.exp(-(grid**2) / (2 * s * s)) / s * hermeval(grid / s, [0] * a + [1])
                gb = np.exp(-(grid**2) / (2 * s * s)) / s * hermeval(grid / s, [0] * b + [1])
                out.append(np.outer(ga, gb))
        j += 1
    return np.stack(out[:count])


def test_hermite_basis_shape_support_and_values() -> None:
    basis = hermite_basis()  # kernel 15, effective 7, scales (2, 2.52, 3.17, 4), mult 1.5
    assert basis.shape == (49, 4, 15, 15) and basis.dtype == torch.float32
    # grid sizes int(15·σ/4) // 2 · 2 + 1: 7.5→7, 9.45→9, 11.89→11, 15→15
    for s, n in enumerate((7, 9, 11, 15)):
        pad = (15 - n) // 2
        mask = torch.ones(15, 15, dtype=torch.bool)
        mask[pad : pad + n, pad : pad + n] = False
        assert basis[:, s][:, mask].abs().sum() == 0  # (empty for n = 15)
        assert basis[:, s][:, ~mask].abs().amax(dim=1).min() > 0
    # unit L2 norm at the smallest scale
    torch.testing.assert_close(basis[:, 0].pow(2).sum(dim=(1, 2)), torch.ones(49))
    # values against an independent construction
    per_scale = []
    for n, sigma in zip((7, 9, 11, 15), (2.0, 2.52, 3.17, 4.0), strict=True):
        pad = (15 - n) // 2
        per_scale.append(
            np.pad(_reference_hermite(n, sigma, 1.5, 49), ((0, 0), (pad,) * 2, (pad,) * 2))
        )
    raw = np.stack(per_scale, axis=1)
    raw /= np.sqrt((raw[:, :1] ** 2).sum(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(basis.numpy(), raw, rtol=1e-5, atol=1e-6)


def test_hermite_matrix_and_normalize_basis() -> None:
    mat = hermite_matrix()  # 7×7 grid, min scale 1.9, mult 1.9, order 4
    assert mat.shape == (49, 49)
    ref = _reference_hermite(7, 1.9, 1.9, 49).reshape(49, 49)
    np.testing.assert_allclose(mat.numpy(), ref, rtol=1e-5, atol=1e-6)

    b = torch.randn(5, 3, 4, 4)
    nb = normalize_basis(b)
    torch.testing.assert_close(nb[:, 0].pow(2).sum(dim=(1, 2)), torch.ones(5))
    torch.testing.assert_close(nb / b, (nb / b)[:, :1, :1, :1].expand_as(b))


# ----------------------------------------------------------------------- models


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", BASELINES)
def test_model_output_shape(name: str, channels: int, stand_in_basis: torch.Tensor) -> None:
    net = build_model(name, 7, "bicubic", channels, 5, basis=stand_in_basis)
    with torch.no_grad():
        assert net(torch.rand(2, channels, 64, 64)).shape == (2, 5)


# Parameter counts, k = 7 (k² = 49), stage channels 16 and 32.
#   conv1 = 16·C·49 (+16 bias), conv2 = 32·16·49 = 25088 (+32 bias), lin = 32·N + N.
#   C=1, N=36: conv1 784+16 = 800, conv2 25120, lin 1152+36 = 1188  → 27108
#   C=3, N=16: conv1 2352+16 = 2368, conv2 25120, lin 512+16 = 528   → 28016
# ensemble, kanazawa: exactly the standard network (padding and scales add nothing).
# hermite/disco: weight (16,C,49)+16 and (32,16,1,49)+32 — the same numbers; the basis
#   is a buffer, not a parameter.
# xu: no biases: C=1: 784 + 25088 + 1188 = 27060; C=3: 2352 + 25088 + 528 = 27968.
# spatial_transform: standard + localisation net
#   Conv2d(C,16,3): 16·C·9+16 (C=1: 160, C=3: 448); Conv2d(16,16,3): 2304+16 = 2320;
#   Linear(4096,16): 65536+16 = 65552; Linear(16,6): 96+6 = 102
#   C=1: 27108 + 160 + 2320 + 65552 + 102 = 95242; C=3: 28016 + 448 + 2320 + 65552 + 102 = 96438
PARAM_COUNTS = {
    "ensemble": (27108, 28016),
    "spatial_transform": (95242, 96438),
    "xu": (27060, 27968),
    "kanazawa": (27108, 28016),
    "hermite": (27108, 28016),
    "disco": (27108, 28016),
}


@pytest.mark.parametrize("name", BASELINES)
def test_parameter_counts(name: str, stand_in_basis: torch.Tensor) -> None:
    for (channels, classes), expected in zip(((1, 36), (3, 16)), PARAM_COUNTS[name], strict=True):
        net = build_model(name, 7, "bicubic", channels, classes, basis=stand_in_basis)
        assert sum(p.numel() for p in net.parameters()) == expected


def test_registry_flags() -> None:
    assert get_spec("kanazawa").traced and not get_spec("xu").traced
    assert get_spec("disco").needs_basis and not get_spec("hermite").needs_basis


def test_kanazawa_feature_maps() -> None:
    net = build_model("kanazawa", 7, "bicubic", 1, 36)
    with torch.no_grad():
        s1, s2 = net.feature_maps(torch.rand(1, 1, 64, 64))
    assert s1.shape == (1, 16, 58, 58) and s2.shape == (1, 32, 52, 52)


def test_steerable_stage_shapes(stand_in_basis: torch.Tensor) -> None:
    net = build_model("disco", 7, "bicubic", 1, 36, basis=stand_in_basis)
    torch.testing.assert_close(net.conv1.basis, stand_in_basis)
    with torch.no_grad():
        s1, s2 = net.feature_maps(torch.rand(1, 1, 64, 64))
    assert s1.shape == (1, 16, 4, 50, 50) and s2.shape == (1, 32, 4, 36, 36)


def test_ensemble_averages_pyramid_logits() -> None:
    net = build_model("ensemble", 7, "bicubic", 3, 10)
    x = torch.rand(2, 3, 64, 64)
    pyramid = build_pyramid(x, max_level=3)
    assert [p.shape[-1] for p in pyramid] == [64, 32, 16] and torch.equal(pyramid[0], x)
    with torch.no_grad():
        expected = torch.stack([net.base_model(p) for p in pyramid]).mean(dim=0)
        torch.testing.assert_close(net(x), expected)
        # padding (k−1)/2 keeps every level's size
        assert net.base_model.feature_maps(pyramid[2])[1].shape[-2:] == (16, 16)


def test_spatial_transform_starts_as_identity() -> None:
    net = build_model("spatial_transform", 7, "bicubic", 1, 36)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        theta = net.transform_model(x)
        torch.testing.assert_close(theta, torch.tensor([[1.0, 0, 0, 0, 1, 0]]).expand(2, 6))
        torch.testing.assert_close(net.transform(x), x, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net(x), net.base_model(x), rtol=1e-4, atol=1e-5)


def test_disco_basis_sources_and_errors(tmp_path: Path, stand_in_basis: torch.Tensor) -> None:
    pt, npy = tmp_path / "basis.pt", tmp_path / "basis.npy"
    torch.save(stand_in_basis, pt)
    np.save(npy, stand_in_basis.numpy())
    for source in (pt, str(npy)):
        net = build_model("disco", basis=source)
        torch.testing.assert_close(net.conv2.basis, stand_in_basis)
    with pytest.raises(ValueError, match=r"\(49, 4, 15, 15\)"):
        build_model("disco")
    with pytest.raises(ValueError, match=r"\(49, 4, 15, 15\)"):
        build_model("disco", basis=stand_in_basis[:, :3])
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((49, 4, 7, 7), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(49, 4, 7, 7\)"):
        build_model("disco", basis=bad)
    with pytest.raises(ValueError, match="neither .pt nor .npy"):
        build_model("disco", basis=tmp_path / "basis.txt")
