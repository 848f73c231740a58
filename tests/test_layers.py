"""SiConv2d, kernel interpolation and pooling against independent references."""

import pytest
import torch
import torch.nn.functional as F

from scalecnn.layers import GlobalMaxPool, ScalePool, SiConv2d, interpolate_kernel
from scalecnn.layers.interpolation import area_matrix_1d

torch.manual_seed(0)


def reference_siconv(x, weights, bias, num_scales, mode, padding):
    """Obviously-correct per-scale loop written from the definition in docs/models.md,
    independent of the package."""
    k = weights.shape[-1]
    outs = []
    for i in range(num_scales):
        t = k + 2 * i
        if mode == "area":
            a = torch.tensor(HAND_AREA[(k, t)]) if (k, t) in HAND_AREA else area_loop(k, t)
            w = torch.einsum("ia,ocab,jb->ocij", a.to(weights), weights, a.to(weights))
        else:
            w = F.interpolate(weights, size=(t, t), mode=mode)
        w = w * (k * k) / (t * t)
        if padding:
            y = F.conv2d(x, w, bias, padding=t // 2)
        else:
            y = F.conv2d(x, w, bias)
            y = F.pad(y, (i, i, i, i))
        outs.append(y)
    return torch.stack(outs, dim=2)


def area_loop(k, t):
    """The spec's area rule, one output index at a time."""
    a = torch.zeros(t, k, dtype=torch.float64)
    for i in range(t):
        ix = (i * k) // t
        d = max(0, (i + 1) * k - (ix + 1) * t)
        if d == 0:
            a[i, ix] = 1.0
        else:
            a[i, ix] = 1 - d / k
            a[i, ix + 1] = d / k
    return a


# Hand-computed for k = 3 → t = 5: rows i = 0..4 (the area rule in the docstring of
# scalecnn.layers.interpolation.area_matrix_1d).
HAND_AREA = {
    (3, 5): [
        [1.0, 0.0, 0.0],
        [2 / 3, 1 / 3, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 1 / 3, 2 / 3],
        [0.0, 0.0, 1.0],
    ]
}


def test_area_map_matches_hand_computation():
    assert torch.allclose(
        area_matrix_1d(3, 5), torch.tensor(HAND_AREA[(3, 5)], dtype=torch.float64)
    )
    w = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    out = interpolate_kernel(w, 5, "area")[0, 0]
    # out[1, 1] mixes the four neighbours with fractions 1/3: bilinear mix, times 9/25
    expected_11 = (
        (
            w[0, 0, 0, 0] * 4 / 9
            + w[0, 0, 0, 1] * 2 / 9
            + w[0, 0, 1, 0] * 2 / 9
            + w[0, 0, 1, 1] * 1 / 9
        )
        * 9
        / 25
    )
    assert out[1, 1].item() == pytest.approx(expected_11.item())
    # out[0, 2] copies w[0, 1] (di = dj = 0), out[0, 1] mixes w[0,0], w[0,1] with 2/3, 1/3
    assert out[0, 2].item() == pytest.approx(w[0, 0, 0, 1].item() * 9 / 25)
    assert out[0, 1].item() == pytest.approx(
        (w[0, 0, 0, 0] * 2 / 3 + w[0, 0, 0, 1] / 3).item() * 9 / 25
    )


@pytest.mark.parametrize("k,t", [(3, 5), (3, 7), (5, 9), (7, 63), (7, 20)])
def test_area_map_matches_spec_loop(k, t):
    assert torch.allclose(area_matrix_1d(k, t), area_loop(k, t))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_kernel_is_scaled_interpolate(mode):
    w = torch.randn(2, 3, 5, 5)
    out = interpolate_kernel(w, 11, mode)
    assert out.shape == (2, 3, 11, 11)
    assert torch.allclose(out, F.interpolate(w, size=(11, 11), mode=mode) * 25 / 121)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area"])
@pytest.mark.parametrize("padding", [False, True])
def test_siconv_matches_reference(mode, padding):
    layer = SiConv2d(
        2, 3, num_scales=4, kernel_size=3, padding=padding, interp_mode=mode, method="direct"
    )
    x = torch.randn(2, 2, 9, 10, requires_grad=True)
    out = layer(x)
    ref = reference_siconv(x, layer.weights, layer.bias, 4, mode, padding)
    h = 9 if padding else 7
    w = 10 if padding else 8
    assert out.shape == (2, 3, 4, h, w)
    tol = 1e-5 * ref.abs().max()
    assert (out - ref).abs().max() <= tol
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, layer.weights, layer.bias], g)
    grads_ref = torch.autograd.grad(ref, [x, layer.weights, layer.bias], g)
    for a, b in zip(grads, grads_ref):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_scale_zero_equals_conv2d_and_padding_zeros():
    layer = SiConv2d(1, 4, num_scales=29, kernel_size=7, interp_mode="bicubic", method="direct")
    x = torch.rand(2, 1, 64, 64)
    out = layer(x)
    assert out.shape == (2, 4, 29, 58, 58)
    assert torch.allclose(out[:, :, 0], F.conv2d(x, layer.weights, layer.bias), atol=1e-6)
    # scale 28 uses a 63x63 kernel: a 2x2 valid output padded by 28 on every side
    assert torch.all(out[:, :, 28, :28] == 0) and torch.all(out[:, :, 28, 30:] == 0)
    assert torch.any(out[:, :, 28, 28:30, 28:30] != 0)


def test_paper_readme_usage():
    conv = SiConv2d(3, 16, 29, 7, interp_mode="bicubic")
    pool = ScalePool(mode="pixel")
    y = pool(conv(torch.rand(1, 3, 64, 64)))
    assert y.shape == (1, 16, 58, 58)
    assert [n for n, _ in conv.named_parameters()] == ["weights", "bias"]
    bound = 1 / (3 * 7 * 7) ** 0.5
    assert conv.weights.abs().max() <= bound and conv.bias.abs().max() <= bound


def test_wrong_num_scales_is_a_clear_error():
    layer = SiConv2d(1, 2, num_scales=10, kernel_size=7)
    with pytest.raises(ValueError, match="num_scales=10.*29"):
        layer(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="interpolation mode"):
        SiConv2d(1, 2, 3, 3, interp_mode="cubic")


def test_pixel_pool_is_max_over_scales():
    x = torch.randn(2, 3, 5, 4, 4)
    pool = ScalePool("pixel")
    out = pool(x)
    assert torch.equal(out, x.max(dim=2).values)
    assert torch.equal(pool.indices, x.argmax(dim=2))


def test_slice_pool_picks_slice_with_single_largest_value():
    x = torch.zeros(1, 2, 3, 4, 4)
    x[0, 0, 1] = 1.0  # channel 0: slice 1 has the largest sum ...
    x[0, 0, 2, 0, 0] = 5.0  # ... but slice 2 has the single largest value
    x[0, 1, 0, 3, 3] = 2.0
    pool = ScalePool("slice")
    out = pool(x)
    assert pool.indices.tolist() == [[2, 0]]
    assert torch.equal(out[0, 0], x[0, 0, 2]) and torch.equal(out[0, 1], x[0, 1, 0])


def test_energy_pool_picks_slice_with_largest_sum():
    x = torch.zeros(1, 1, 3, 4, 4)
    x[0, 0, 1] = 1.0
    x[0, 0, 2, 0, 0] = 5.0
    pool = ScalePool("energy")
    out = pool(x)
    assert pool.indices.tolist() == [[1]]
    assert torch.equal(out[0, 0], x[0, 0, 1])


def test_scale_pool_gradient_flows_to_chosen_slice_only():
    x = torch.randn(1, 1, 3, 2, 2, requires_grad=True)
    pool = ScalePool("energy")
    pool(x).sum().backward()
    chosen = pool.indices.item()
    assert torch.all(x.grad[0, 0, chosen] == 1)
    assert x.grad.sum().item() == 4


def test_global_max_pool():
    x = torch.randn(2, 3, 4, 5, 6)
    assert torch.equal(GlobalMaxPool()(x), x.flatten(2).max(dim=2).values)
    with pytest.raises(ValueError, match="pixel"):
        ScalePool("maximum")
