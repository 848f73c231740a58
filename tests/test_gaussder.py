"""Model 12, the Gaussian derivative network: discretisation, scale covariance, invariance.

Property tests from the theory (Lindeberg 2022): the discrete Gaussian keeps the
variance t = σ² and the semigroup property; scale channel i on an image matches
scale channel i + 1 on the image magnified by the scale-channel ratio (i + 2 for
twice the ratio), and pooling over the channels (average or max) makes the logits
nearly invariant. Each error is set beside the standard CNN's on the same inputs.
The pooling over scale channels and scale-channel dropout (Perzanowski & Lindeberg
2024) are checked against the pooling computed by hand from ``scale_channels``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scale_props import (
    blob_image,
    check_deterministic_for_a_seed,
    check_gradients_reach_every_parameter,
    check_shapes_parameters_and_traces,
    check_state_dict_round_trip_and_equivariance_protocol,
    logit_changes,
    randomise_norms,
    sq_rel_error,
    standard_net,
)

import scalecnn.models.gaussder  # noqa: F401  (registers "gaussder")
from scalecnn.layers.gaussian_derivative import (
    GaussianDerivativeLayer,
    derivative_names,
    derivative_stencils,
    discrete_gaussian,
)
from scalecnn.models import build_model
from scalecnn.models.gaussder import (
    MAX_POOL_VARIANT,
    NUM_SCALES,
    SCALE_DROPOUT,
    SCALE_POOL,
    SPATIAL_POOL,
    WIDTHS,
    GaussDerNet,
    joint_batch_norm,
    upsample,
)

SMALL_WIDTHS = (6, 8, 8, 8)


def small_net(**kw) -> GaussDerNet:
    torch.manual_seed(0)
    net = GaussDerNet(1, 10, widths=SMALL_WIDTHS, **kw).double().eval()
    randomise_norms(net, blob_image(64))
    return net


def standard_stage1(x: torch.Tensor) -> torch.Tensor:
    std = standard_net()
    with torch.no_grad():
        return std.feature_maps(x)[0]


# --- discretisation ----------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5, 6.0])
def test_discrete_gaussian_has_unit_mass_and_variance_sigma_squared(sigma):
    k = discrete_gaussian(sigma)
    n = torch.arange(k.numel(), dtype=torch.float64) - k.numel() // 2
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float((n**2 * k).sum()) == pytest.approx(sigma**2, rel=1e-3)


def test_discrete_gaussian_semigroup():
    """T(·; t1) ∗ T(·; t2) = T(·; t1 + t2): the property the sampled Gaussian lacks."""
    a, b = discrete_gaussian(1.0, radius=20), discrete_gaussian(1.5, radius=20)
    both = np.convolve(a.numpy(), b.numpy())[20:-20]
    expected = discrete_gaussian(math.sqrt(1.0 + 1.5**2), radius=20).numpy()
    assert np.abs(both - expected).max() < 1e-10


def test_stencils_are_exact_on_a_quadratic():
    """On x² + 3xy: δx → 2x + 3y, δy → 3x, δxx → 2, δxy → 3, δyy → 0 (and δxxx → 0)."""
    names = derivative_names((1, 2, 3))
    stencils = derivative_stencils(names)  # (9, 5, 5)
    y, x = torch.meshgrid(
        torch.arange(28.0, dtype=torch.float64),
        torch.arange(30.0, dtype=torch.float64),
        indexing="ij",
    )
    d = F.conv2d((x**2 + 3 * x * y)[None, None], stencils[:, None])[0]
    d = dict(zip(names, d))
    xi, yi = x[2:-2, 2:-2], y[2:-2, 2:-2]
    expected = {"x": 2 * xi + 3 * yi, "y": 3 * xi, "xx": 2.0, "xy": 3.0, "yy": 0.0, "xxx": 0.0}
    for name, value in expected.items():
        assert torch.allclose(d[name], torch.as_tensor(value, dtype=xi.dtype).expand_as(xi)), name


def test_smoothing_matrices_equal_replicate_padded_convolution():
    """The GEMM smoothing equals pad-by-replication + separable discrete-Gaussian convolution."""
    layer = GaussianDerivativeLayer(2, 3).double()
    x = torch.randn(3, 2, 20, 24, dtype=torch.float64)
    for sigma in (1.0, 3.0):
        k = discrete_gaussian(sigma)
        r = k.numel() // 2
        p = F.pad(x.reshape(6, 1, 20, 24), (r + 1,) * 4, mode="replicate")
        ref = F.conv2d(F.conv2d(p, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1)).view(3, 2, 22, 26)
        assert torch.allclose(layer.smooth(x, sigma), ref, atol=1e-12)


def test_layer_is_the_learned_combination_of_its_derivatives():
    """Folded kernel = Σ_α w_α σ^|α| δ^α; stride s = every s-th output; constants → 0."""
    torch.manual_seed(0)
    layer = GaussianDerivativeLayer(2, 3, orders=(0, 1, 2, 3)).double()
    x = torch.randn(2, 2, 17, 20, dtype=torch.float64)
    d = layer.derivatives(x, 1.7)  # (2, 2, 10, 17, 20)
    expected = torch.einsum("bcdhw,ocd->bohw", d, layer.weight)
    assert torch.allclose(layer(x, 1.7), expected, atol=1e-12)
    assert torch.allclose(layer(x, 1.7, stride=2), expected[..., ::2, ::2], atol=1e-12)
    no_zeroth = GaussianDerivativeLayer(2, 3).double()
    assert no_zeroth(torch.full((1, 2, 12, 12), 5.0, dtype=torch.float64), 2.0).abs().max() < 1e-9


def test_upsample_puts_samples_back_in_place():
    ramp = torch.arange(64.0, dtype=torch.float64)
    plane = (ramp[:, None] + 2 * ramp[None, :])[None, None]  # linear: bilinear is exact
    for h in (2, 4, 8):
        up = upsample(plane[..., ::h, ::h], h, (64, 64))
        inner = 64 - h  # beyond the last sample the map is replicated
        assert torch.allclose(up[..., :inner, :inner], plane[..., :inner, :inner])


def test_joint_batch_norm_matches_batch_norm_on_one_map():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64) * 2 + 1
    ref, ours = torch.nn.BatchNorm2d(3).double(), torch.nn.BatchNorm2d(3).double()
    assert torch.allclose(joint_batch_norm(ours, [x], [1.0])[0], ref(x))
    assert torch.allclose(ours.running_mean, ref.running_mean)
    assert torch.allclose(ours.running_var, ref.running_var)
    # two maps share one set of statistics: as batch norm of the two stacked in the batch
    y = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    joint = joint_batch_norm(ours, [x, y], [1.0, 1.0])
    assert torch.allclose(torch.cat(joint), ref(torch.cat([x, y])))


# --- scale covariance and invariance -------------------------------------------------------


@pytest.mark.parametrize("multiresolution", [True, False])
def test_scale_channels_shift_under_magnification_by_two(multiresolution):
    """Channel i on f equals channel i + 2 (ratio √2) on f magnified ×2, every layer.

    g[m] = f(m/2) on a 128² grid; the maps are compared at the points both grids hold
    (f's pixels, or the even ones where a map has spacing 2). Measured: squared relative
    error ≤ 1.2e-2 with multi-resolution (where f's channel runs on the even pixels and
    g's on all of them, the two discretisations differ) and ≤ 7e-3 at full resolution,
    against ≈ 0.15 for the standard CNN's stage 1 on the same pair.
    """
    net = small_net(multiresolution=multiresolution)
    f, g = blob_image(64), blob_image(128, 2.0)
    with torch.no_grad():
        of, og = net.scale_channels(f), net.scale_channels(g)
    errors = []
    for k in range(len(of)):
        for i in range(net.num_scales - 2):
            h_f, h_g = net.spacings[k][i], net.spacings[k][i + 2]  # f pixels, g pixels
            common = max(2 * h_f, h_g)  # in g pixels
            a = of[k][i][..., :: common // (2 * h_f), :: common // (2 * h_f)]
            b = og[k][i + 2][..., :: common // h_g, :: common // h_g]
            errors.append(sq_rel_error(a, b))
    # standard CNN: valid 7×7 convolutions, output j ↔ pixel j + 3; pixel 2(j + 3) of g
    std_f, std_g = standard_stage1(f), standard_stage1(g)
    std_error = sq_rel_error(
        std_f, std_g[..., 3::2, 3::2][..., : std_f.shape[-2], : std_f.shape[-1]]
    )
    assert max(errors) < 2e-2
    assert std_error > 0.1
    assert max(errors) < std_error / 5


def test_scale_channels_shift_under_magnification_by_the_ratio():
    """Channel i on f matches channel i + 1 on f magnified by √2 (full resolution).

    The magnified image is sampled analytically on a 91² grid; its responses are read
    at the positions √2·n by bicubic interpolation. Measured: squared relative error
    ≤ 4e-3, against ≈ 0.05 for the standard CNN's stage 1.
    """
    s = math.sqrt(2)
    net = small_net(multiresolution=False)
    f, g = blob_image(64), blob_image(91, s)
    # sampling positions √2·n (n = 0 … 63) in grid_sample's [-1, 1] coordinates of 91 px
    pos = torch.arange(64, dtype=torch.float64) * s / 90 * 2 - 1
    gy, gx = torch.meshgrid(pos, pos, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None]

    def resample(m: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(m, grid, mode="bicubic", align_corners=True)

    with torch.no_grad():
        of, og = net.scale_channels(f), net.scale_channels(g)
    inner = (slice(None),) * 2 + (slice(4, -4),) * 2  # bicubic reads up to 2 px outside
    errors = [
        sq_rel_error(a[i][inner], resample(b[i + 1])[inner])
        for a, b in zip(of, og)
        for i in range(net.num_scales - 1)
    ]
    std_f = F.pad(standard_stage1(f), (3, 3, 3, 3))  # back on the 64² pixel grid
    std_g = resample(F.pad(standard_stage1(g), (3, 3, 3, 3)))
    std_error = sq_rel_error(std_f[inner], std_g[inner])
    assert max(errors) < 1e-2
    assert max(errors) < std_error / 5


@pytest.mark.parametrize("scale_pool", ["avg", "max"])
@pytest.mark.parametrize("magnification", [math.sqrt(2), 2.0])
def test_logits_nearly_invariant_to_rescaling(magnification, scale_pool):
    """Pooling over scale channels and space: logits of an object (about 12 px) and its
    rescaled copy (same 64² canvas, random weights, eval mode, zero classifier bias)
    change much less than the standard CNN's. Measured relative change, average / max
    over the five scale channels: 0.050 / 0.020 (×√2) and 0.126 / 0.039 (×2), against
    0.22 and 0.30 for the standard CNN. The average changes more: magnifying by 2 moves
    the responses two channels up, and the two channels that leave the range and the
    two that enter it weigh 2/5 in the average, while the maximum keeps its peak."""
    net_change, std_change = logit_changes(small_net(scale_pool=scale_pool), magnification)
    if scale_pool == "max":
        assert net_change < 0.1
        assert net_change < std_change / 4
    else:
        assert net_change < 0.15
        assert net_change < std_change / 2


# --- model plumbing -----------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_parameters_and_traces(channels):
    # 4 layers, 5 derivatives per channel, no conv bias; batch norm (2 per channel); linear
    check_shapes_parameters_and_traces("gaussder", channels)


def test_gradients_reach_every_parameter_and_scale_dropout_runs():
    torch.manual_seed(0)
    model = GaussDerNet(3, 5, widths=(4, 4), scale_dropout=0.5, scale_pool="avg").train()
    check_gradients_reach_every_parameter(model, torch.rand(3, 3, 32, 32))


def test_deterministic_for_a_seed():
    check_deterministic_for_a_seed(GaussDerNet)


def test_state_dict_round_trip_and_equivariance_protocol(tiny_stir):
    """Weights reload into a fresh model; the evaluation's equivariance error runs on the
    stage maps (64² maps: the crop keeps the whole object) and is finite."""
    check_state_dict_round_trip_and_equivariance_protocol("gaussder", tiny_stir)


# --- defaults, pooling over scale channels, scale-channel dropout -------------------------


def test_default_config_is_the_documented_one():
    """The factory's defaults are the module constants docs/models.md lists: 4 layers of
    24, 32, 48, 48 channels, 5 scale channels σ0 = 1 … 4 (ratio √2), σ × √2 per layer,
    orders 1 and 2, average over the scale channels with dropout 0.2, spatial max."""
    model = build_model("gaussder")
    assert (SCALE_POOL, SCALE_DROPOUT, SPATIAL_POOL, NUM_SCALES) == ("avg", 0.2, "max", 5)
    assert WIDTHS == (24, 32, 48, 48)
    assert (model.scale_pool, model.scale_dropout, model.spatial_pool) == ("avg", 0.2, "max")
    assert model.num_scales == 5
    assert model.sigma0 == pytest.approx([1.0, 2**0.5, 2.0, 2**1.5, 4.0])
    assert model.layer_scales == pytest.approx([1.0, 2**0.5, 2.0, 2**1.5])
    assert model.sigmas[3][4] == pytest.approx(4 * 2**1.5)
    assert [layer.weight.shape[0] for layer in model.layers] == [24, 32, 48, 48]
    assert all(layer.names == ("x", "y", "xx", "xy", "yy") for layer in model.layers)
    assert all(layer.bias is None for layer in model.layers)
    assert model.lin.in_features == 48
    previous = build_model("gaussder", **MAX_POOL_VARIANT)
    assert (previous.scale_pool, previous.scale_dropout) == ("max", 0.0)


def last_layer_features(model: GaussDerNet, x: torch.Tensor) -> torch.Tensor:
    """Spatial maximum of each scale channel's last map, computed from ``scale_channels``:
    ``(S, B, C)``."""
    return torch.stack([y.amax(dim=(2, 3)) for y in model.scale_channels(x)[-1]])


def logits_of(model: GaussDerNet, features: torch.Tensor) -> torch.Tensor:
    return features @ model.lin.weight.T + model.lin.bias


def test_eval_output_is_the_average_over_all_scale_channels():
    """In evaluation, dropout or not, the logits are the linear classifier of the average
    of the five channels' spatial maxima (max: their maximum), whatever the RNG state."""
    torch.manual_seed(0)
    x = torch.rand(3, 1, 32, 32, dtype=torch.float64)
    for pool in ("avg", "max"):
        model = GaussDerNet(1, 7, widths=(4, 6), scale_pool=pool, scale_dropout=0.5)
        model = model.double().eval()
        feats = last_layer_features(model, x)
        pooled = feats.mean(dim=0) if pool == "avg" else feats.amax(dim=0)
        with torch.no_grad():
            torch.manual_seed(1)
            first = model(x)
            torch.manual_seed(2)
            second = model(x)
        assert model.scale_keep_mask(3, x.device) is None
        assert torch.equal(first, second)
        assert torch.allclose(first, logits_of(model, pooled), atol=1e-12)


def test_training_dropout_leaves_the_dropped_channels_out():
    """In training, channel i of sample j is dropped where torch.rand(S, B)[i, j] < p (the
    draw after the seed: nothing else draws before it): the average runs over the kept
    channels only, the maximum likewise, and neither equals pooling over all five."""
    p, b, seed = 0.5, 6, 3
    torch.manual_seed(seed)
    keep = torch.rand(NUM_SCALES, b) >= p
    assert keep.any(dim=0).all() and not keep.all()  # no fallback draw, some dropped
    x = torch.rand(b, 1, 32, 32, dtype=torch.float64)
    for pool in ("avg", "max"):
        torch.manual_seed(0)
        model = GaussDerNet(1, 7, widths=(4, 6), scale_pool=pool, scale_dropout=p).double()
        model.train()
        feats = last_layer_features(model, x)  # batch statistics: same as in forward
        mask = keep[..., None].to(feats.dtype)
        if pool == "avg":
            kept = (feats * mask).sum(dim=0) / mask.sum(dim=0)
            everything = feats.mean(dim=0)
        else:
            kept = torch.where(mask > 0, feats, -torch.inf).amax(dim=0)
            everything = feats.amax(dim=0)
        torch.manual_seed(seed)
        out = model(x)
        assert torch.allclose(out, logits_of(model, kept), atol=1e-12)
        assert not torch.allclose(out, logits_of(model, everything), atol=1e-6)


def test_without_dropout_training_and_evaluation_pool_alike():
    """scale_dropout 0: no mask in training, and a mask keeping every channel pools as no
    mask; so training and evaluation differ only through the batch norm."""
    torch.manual_seed(0)
    ys = torch.rand(NUM_SCALES, 4, 6, dtype=torch.float64)
    everything = torch.ones(NUM_SCALES, 4, dtype=torch.bool)
    for pool in ("avg", "max"):
        model = GaussDerNet(1, 3, widths=(4,), scale_pool=pool, scale_dropout=0.0).train()
        assert model.scale_keep_mask(4, ys.device) is None
        assert torch.allclose(model.pool_scales(ys, everything), model.pool_scales(ys))
    model = GaussDerNet(1, 3, widths=(4, 6), scale_dropout=0.0).double()
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    model.train()
    train_out = model(x)
    train_feats = last_layer_features(model, x).mean(dim=0)
    assert torch.allclose(train_out, logits_of(model, train_feats), atol=1e-12)


def test_dropout_keeps_one_channel_where_all_were_dropped():
    torch.manual_seed(0)
    model = GaussDerNet(1, 3, widths=(4,), scale_dropout=0.999).train()
    keep = model.scale_keep_mask(50, torch.device("cpu"))
    assert keep.shape == (NUM_SCALES, 50)
    assert (keep.sum(dim=0) >= 1).all()
    assert (keep.sum(dim=0) == 1).float().mean() > 0.9


def test_layer_scales_set_each_layers_sigma():
    """σ of layer k in channel i is σ0_i · layer_scales[k]; the default is growth^k."""
    net = GaussDerNet(1, 3, widths=(4, 4, 4), sigma0=(1.0, 2.0), layer_scales=(1.0, 3.0, 3.0))
    assert net.sigmas == [[1.0, 2.0], [3.0, 6.0], [3.0, 6.0]]
    assert net.spacings == [[1, 2], [2, 2], [2, 2]]
    grown = GaussDerNet(1, 3, widths=(4, 4), sigma0=(1.0,), growth=1.5)
    assert grown.sigmas == [[1.0], [1.5]]
    with pytest.raises(ValueError):
        GaussDerNet(1, 3, widths=(4, 4), layer_scales=(1.0,))
