"""Model 13, the Riesz network: transform identities, scale equivariance, invariance.

Property tests from the theory (Barisin et al. 2023): ``R_x² + R_y² = −I`` and the
first-order transform keeps the energy of a zero-mean signal; a Riesz layer (degree-0
homogeneous multipliers) commutes with rescaling of a band-limited input, and the
network's logits change much less than the standard CNN's between an object and its
rescaled copy. Each error is set beside the standard CNN's on the same inputs. The
defaults are checked against the authors' classification network (their code release,
github.com/tibaris/RieszNetworks: five layers of 12, 16, 24, 32, 80 channels, 20,882
parameters for 10 classes).
"""

from __future__ import annotations

import math

import pytest
import torch
from scale_props import (
    blob_image,
    check_deterministic_for_a_seed,
    check_gradients_reach_every_parameter,
    check_state_dict_round_trip_and_equivariance_protocol,
    logit_changes,
    randomise_norms,
    sq_rel_error,
    standard_net,
)

import scalecnn.models.riesz  # noqa: F401  (registers "riesz")
from scalecnn.layers.riesz import (
    RieszLayer,
    from_spatial_major,
    riesz_multipliers,
    riesz_transform,
    to_spatial_major,
)
from scalecnn.models import build_model, get_spec
from scalecnn.models.riesz import (
    ORDERS,
    SPATIAL_POOL,
    WIDTHS,
    WIDTHS_4_LAYERS,
    RieszNet,
    batch_norm_spatial_major,
)

# --- the transform -------------------------------------------------------------------------


def test_multipliers_square_to_minus_identity():
    """R_x² + R_y² = R_xx + R_yy = −1 away from ω = 0 (and the Nyquist lines of odd terms)."""
    m = riesz_multipliers(16, 16)
    assert m.shape == (5, 16, 9)
    inner = (slice(1, 8), slice(1, 8))  # no zero frequency, no Nyquist line
    total1 = (m[0] ** 2 + m[1] ** 2)[inner]
    total2 = (m[2] + m[4])[inner]
    assert torch.allclose(total1, torch.full_like(total1, -1))
    assert torch.allclose(total2, torch.full_like(total2, -1))
    assert torch.allclose((m[2] * m[4])[inner], (m[3] ** 2)[inner])  # R_xx R_yy = R_xy²
    assert (m[:, 0, 0] == 0).all()


def test_transform_identities_on_a_periodic_image():
    """Zero-mean band-limited f: R_xx f + R_yy f = −f, ‖R_x f‖² + ‖R_y f‖² = ‖f‖²; outputs real."""
    f = blob_image(64, centre=31.5)
    f = f - f.mean()
    r = riesz_transform(f, padding="periodic")[:, 0]  # (1, 5, 64, 64)
    assert r.dtype == torch.float64
    assert torch.allclose(r[:, 2] + r[:, 4], -f[:, 0], atol=1e-10)
    energy = float((r[:, 0] ** 2).sum() + (r[:, 1] ** 2).sum())
    assert energy == pytest.approx(float((f**2).sum()), rel=1e-9)


@pytest.mark.parametrize("padding", ["periodic", "symmetric", "zeros"])
def test_transform_of_a_blob_is_odd_and_even_as_its_multiplier(padding):
    """For a centred symmetric blob, R_x is odd in x and R_xx even."""
    n = 64
    g = torch.arange(n, dtype=torch.float64) - 31.5
    y, x = torch.meshgrid(g, g, indexing="ij")
    f = torch.exp(-(x**2 + y**2) / 18)[None, None]
    r = riesz_transform(f, padding=padding)[0, 0]
    if padding == "zeros":  # the zero extension is not symmetric about the centre
        r = riesz_transform(torch.nn.functional.pad(f, (32, 32, 32, 32)), padding="periodic")
        r = r[0, 0, :, 32:-32, 32:-32]
    assert torch.allclose(r[0], -r[0].flip(-1), atol=1e-10)
    assert torch.allclose(r[2], r[2].flip(-1), atol=1e-10)


# --- scale equivariance and invariance -----------------------------------------------------


@pytest.mark.parametrize("padding", ["periodic", "symmetric", "zeros"])
def test_layer_mixing_on_spectra_equals_mixing_after_the_transforms(padding):
    torch.manual_seed(0)
    layer = RieszLayer(3, 4, padding=padding, bias=True).double()
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64)
    out = from_spatial_major(layer(to_spatial_major(x)))
    assert torch.allclose(out, layer.reference(x), atol=1e-12)


def test_spatial_major_batch_norm_matches_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64) * 2 + 1
    ref, ours = torch.nn.BatchNorm2d(3).double(), torch.nn.BatchNorm2d(3).double()
    for _ in range(2):  # training mode: batch statistics and running averages
        out = batch_norm_spatial_major(ours, to_spatial_major(x))
        assert torch.allclose(from_spatial_major(out), ref(x))
    assert torch.allclose(ours.running_var, ref.running_var)
    ref.eval(), ours.eval()
    out = batch_norm_spatial_major(ours, to_spatial_major(x))
    assert torch.allclose(from_spatial_major(out), ref(x))


@pytest.mark.parametrize("padding", ["periodic", "symmetric", "zeros"])
def test_layers_commute_with_magnification_by_two(padding):
    """Riesz layers + BN + ReLU on f magnified ×2 (128²: the periodic or extended domain
    scales too), read at even pixels, equal the layers on f (64²). Measured squared
    relative error: layer 1 ≈ 1e-20 (periodic, zeros: exact up to rounding, the blobs
    being band-limited) and 4e-6 (symmetric: the half-sample mirror axis moves by a
    quarter pixel); layer 2 ≈ 1.3e-4 (the ReLU output of layer 1 is not band-limited);
    the standard CNN's stage 1 on the same pair: 0.15."""
    torch.manual_seed(0)
    net = RieszNet(1, 10, widths=(6, 8), padding=padding).double().eval()
    randomise_norms(net, blob_image(64), channel_dim=2)
    f, g = blob_image(64), blob_image(128, 2.0)
    with torch.no_grad():
        of = [from_spatial_major(y) for y in net.layer_outputs(f)]
        og = [from_spatial_major(y) for y in net.layer_outputs(g)]
        std = standard_net()
        sf, sg = std.feature_maps(f)[0], std.feature_maps(g)[0]
    layer1 = sq_rel_error(of[0], og[0][..., ::2, ::2])
    layer2 = sq_rel_error(of[1], og[1][..., ::2, ::2])
    std_error = sq_rel_error(sf, sg[..., 3::2, 3::2][..., : sf.shape[-2], : sf.shape[-1]])
    assert layer1 < 1e-5
    assert layer2 < 1e-3
    assert std_error > 0.1
    assert layer1 < std_error / 1e4 and layer2 < std_error / 100


@pytest.mark.parametrize("magnification", [math.sqrt(2), 2.0])
def test_logits_nearly_invariant_to_rescaling(magnification):
    """Logits of an object (about 12 px) and its rescaled copy on the same 64² canvas
    (random weights, eval mode, zero classifier bias) change much less than the
    standard CNN's. Measured relative change (seed 0): 0.095 (×√2) and 0.173 (×2),
    against 0.22 and 0.30 for the standard CNN; it depends much on the random weights
    (seeds 0–4: 0.07–0.15 and 0.10–0.26; the four-layer network of 24, 32, 48, 48
    channels: 0.05–0.24 and 0.10–0.25). What is left comes from the fixed canvas (the
    transforms are global: the periodic copies of the object sit 64 px away whatever its
    size) and from the discretisation of the ReLU outputs of layers 1–4."""
    torch.manual_seed(0)
    net = RieszNet(1, 10).double().eval()
    randomise_norms(net, blob_image(64), channel_dim=2)
    net_change, std_change = logit_changes(net, magnification)
    assert net_change < 0.2
    assert net_change < std_change / 1.5


# --- model plumbing -----------------------------------------------------------------------


def test_defaults_are_the_authors_classification_network():
    """Five Riesz layers of 12, 16, 24, 32, 80 channels, orders 1 and 2 (5 transforms per
    input channel), affine batch norm, periodic image, global max, ``Linear(80, classes)``.
    The authors' network (one channel, 10 classes) has 20,882 parameters; theirs has a
    bias in each 1×1 mixing (12 + 16 + 24 + 32 + 80 = 164), which the batch norm after it
    cancels and ours leaves out."""
    assert WIDTHS == (12, 16, 24, 32, 80) and ORDERS == (1, 2) and SPATIAL_POOL == "max"
    model = RieszNet(1, 10)
    assert [layer.weight.shape for layer in model.layers] == [
        (12, 1, 5),
        (16, 12, 5),
        (24, 16, 5),
        (32, 24, 5),
        (80, 32, 5),
    ]
    assert all(layer.bias is None and layer.padding == "periodic" for layer in model.layers)
    assert all(norm.affine for norm in model.norms)
    assert model.spatial_pool == "max" and model.lin.in_features == 80
    assert sum(p.numel() for p in model.parameters()) + 164 == 20_882
    previous = RieszNet(1, 36, widths=WIDTHS_4_LAYERS)
    assert sum(p.numel() for p in previous.parameters()) == 25_228


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_parameters_and_traces(channels):
    """At the defaults, for ``channels`` inputs and 36 classes: 5 mixing weights per
    input–output channel pair, batch norm (2 per channel) and the classifier; logits
    ``(B, 36)``; stage 1 (layer 3) and stage 2 (layer 5) at full resolution; traced."""
    torch.manual_seed(0)
    model = build_model("riesz", num_channels=channels, num_classes=36)
    n = sum(p.numel() for p in model.parameters())
    mixing = 5 * (channels * 12 + 12 * 16 + 16 * 24 + 24 * 32 + 32 * 80)
    assert n == mixing + 2 * (12 + 16 + 24 + 32 + 80) + 80 * 36 + 36
    model.eval()
    x = torch.rand(2, channels, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 36)
        s1, s2 = model.feature_maps(x)
    assert model.stage1_layer == 2
    assert s1.shape == (2, 24, 64, 64) and s2.shape == (2, 80, 64, 64)
    assert get_spec("riesz").traced


def test_centre_read_out_is_the_classifier_at_the_central_pixel():
    """``spatial_pool="centre"``: the logits are the linear classifier applied to the last
    layer's features at pixel (H // 2, W // 2), as the authors' final 1×1 convolution
    followed by reading the central pixel; ``max`` and ``avg`` pool the whole image."""
    torch.manual_seed(0)
    x = torch.rand(3, 1, 32, 30, dtype=torch.float64)
    for pool in ("centre", "max", "avg"):
        torch.manual_seed(1)
        net = RieszNet(1, 4, widths=(4, 6), spatial_pool=pool).double().eval()
        with torch.no_grad():
            last = from_spatial_major(net.layer_outputs(x)[-1])  # (B, 6, 32, 30)
            per_pixel = torch.einsum("bchw,kc->bkhw", last, net.lin.weight)
            per_pixel = per_pixel + net.lin.bias[:, None, None]
            if pool == "centre":
                expected = per_pixel[:, :, 16, 15]
            elif pool == "max":
                expected = last.amax(dim=(2, 3)) @ net.lin.weight.T + net.lin.bias
            else:
                expected = per_pixel.mean(dim=(2, 3))
            assert torch.allclose(net(x), expected, atol=1e-12)
    with pytest.raises(ValueError):
        RieszNet(1, 4, spatial_pool="middle")


@pytest.mark.parametrize("padding", ["symmetric", "zeros", "periodic"])
def test_gradients_reach_every_parameter(padding):
    torch.manual_seed(0)
    model = RieszNet(3, 5, widths=(4, 4), padding=padding, spatial_pool="avg").train()
    check_gradients_reach_every_parameter(model, torch.rand(3, 3, 32, 32))


def test_layer_rejects_unknown_options_and_is_deterministic():
    with pytest.raises(ValueError):
        RieszLayer(1, 2, padding="reflect")
    with pytest.raises(ValueError):
        riesz_multipliers(8, 8, orders=(3,))
    check_deterministic_for_a_seed(RieszNet)


def test_state_dict_round_trip_and_equivariance_protocol(tiny_stir):
    """Weights reload into a fresh model; the evaluation's equivariance error runs on the
    stage maps (64² maps: the crop keeps the whole object) and is finite."""
    check_state_dict_round_trip_and_equivariance_protocol("riesz", tiny_stir)
