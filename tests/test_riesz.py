"""Model 13, the Riesz network: transform identities, scale equivariance, invariance.

Property tests from the theory (Barisin et al. 2023): ``R_x² + R_y² = −I`` and the
first-order transform keeps the energy of a zero-mean signal; a Riesz layer (degree-0
homogeneous multipliers) commutes with rescaling of a band-limited input, and the
network's logits barely change between an object and its rescaled copy. Each error
is set beside the standard CNN's on the same inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import scalecnn.models.riesz  # noqa: F401  (registers "riesz")
from scalecnn.layers.riesz import (
    RieszLayer,
    from_spatial_major,
    riesz_multipliers,
    riesz_transform,
    to_spatial_major,
)
from scalecnn.models import build_model, get_spec
from scalecnn.models.riesz import RieszNet, batch_norm_spatial_major

BLOBS = (  # (centre y, centre x, width, amplitude) around the image centre 31.5
    (29.0, 30.0, 3.0, 1.0),
    (35.0, 36.5, 2.5, -0.7),
    (30.5, 37.0, 4.0, 0.8),
    (36.0, 27.0, 2.0, 0.6),
)


def blob_image(n: int, magnification: float = 1.0, centre: float = 0.0) -> torch.Tensor:
    """``(1, 1, n, n)`` float64 samples of ``f((x − centre)/s + centre)``, ``f``: Gaussian blobs."""
    grid = (torch.arange(n, dtype=torch.float64) - centre) / magnification + centre
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    img = torch.zeros(n, n, dtype=torch.float64)
    for cy, cx, w, a in BLOBS:
        img += a * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * w**2))
    return img[None, None]


def sq_rel_error(ref: torch.Tensor, other: torch.Tensor) -> float:
    """``‖ref − other‖² / ‖ref‖²`` (the evaluation's measure) of the object's responses:
    each map's background (its top-left value, far from the object) is subtracted."""
    ref, other = ref - ref[..., :1, :1], other - other[..., :1, :1]
    return float(((ref - other) ** 2).sum() / (ref**2).sum())


def randomise_norms(model: torch.nn.Module, calibration: torch.Tensor, seed: int = 1) -> None:
    """Eval-mode batch norms with zero mean, random positive scales and small negative
    shifts, their variances set layer by layer to the second moments of the responses
    to ``calibration``: about half the units respond to the object, and the ReLU sets a
    blank background to 0 in every layer, so that only the object's responses count."""
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    for layer, norm in zip(model.layers, model.norms):
        c = norm.num_features
        norm.running_mean.zero_()
        norm.weight.data.copy_(0.5 + torch.rand(c, generator=gen))
        norm.bias.data.copy_(-0.1 * torch.rand(c, generator=gen))
        outs: list[torch.Tensor] = []
        hook = layer.register_forward_hook(lambda m, i, o, outs=outs: outs.append(o))
        with torch.no_grad():
            model(calibration)
        hook.remove()
        dims = [d for d in range(outs[0].dim()) if d != 2]
        second = sum((o**2).sum(dim=dims) for o in outs)
        norm.running_var.copy_(second / sum(o.numel() // c for o in outs) + 1e-12)


def standard_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("standard", num_channels=1, num_classes=10).double().eval()


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
    randomise_norms(net, blob_image(64))
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
    standard CNN's. Measured relative change: 0.045 (×√2) and 0.095 (×2), against 0.22
    and 0.30 for the standard CNN. What is left comes from the fixed canvas (the
    transforms are global: the periodic copies of the object sit 64 px away whatever
    its size) and from the discretisation of the ReLU outputs of layers 1–3."""
    torch.manual_seed(0)
    net = RieszNet(1, 10).double().eval()
    randomise_norms(net, blob_image(64))
    std = standard_net()
    for model in (net, std):
        model.lin.bias.data.zero_()
    f = blob_image(64, 0.7, centre=31.5)
    g = blob_image(64, 0.7 * magnification, centre=31.5)
    with torch.no_grad():
        changes = [float((m(f) - m(g)).norm() / m(f).norm()) for m in (net, std)]
    assert changes[0] < 0.15
    assert changes[0] < changes[1] / 2.5


# --- model plumbing -----------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_parameters_and_traces(channels):
    torch.manual_seed(0)
    model = build_model("riesz", num_channels=channels, num_classes=36)
    n = sum(p.numel() for p in model.parameters())
    # 4 layers, 5 transforms per channel, no conv bias; batch norm (2 per channel); linear
    expected = 5 * (channels * 24 + 24 * 32 + 32 * 48 + 48 * 48) + 2 * 152 + 48 * 36 + 36
    assert n == expected
    model.eval()
    x = torch.rand(2, channels, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 36)
        s1, s2 = model.feature_maps(x)
    assert s1.shape == (2, 32, 64, 64) and s2.shape == (2, 48, 64, 64)
    assert get_spec("riesz").traced


@pytest.mark.parametrize("padding", ["symmetric", "zeros", "periodic"])
def test_gradients_reach_every_parameter(padding):
    torch.manual_seed(0)
    model = RieszNet(3, 5, widths=(4, 4), padding=padding, spatial_pool="avg").train()
    model(torch.rand(3, 3, 32, 32)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_layer_rejects_unknown_options_and_is_deterministic():
    with pytest.raises(ValueError):
        RieszLayer(1, 2, padding="reflect")
    with pytest.raises(ValueError):
        riesz_multipliers(8, 8, orders=(3,))
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = RieszNet(1, 4, widths=(4, 4)).eval()
        with torch.no_grad():
            outs.append(model(torch.rand(2, 1, 32, 32)))
    assert torch.equal(outs[0], outs[1])


def test_state_dict_round_trip_and_equivariance_protocol(tiny_stir):
    """Weights reload into a fresh model; the evaluation's equivariance error runs on the
    stage maps (64² maps: the crop keeps the whole object) and is finite."""
    from scalecnn.data import STIRDataset
    from scalecnn.evaluation import equivariance_errors

    torch.manual_seed(0)
    model = build_model("riesz", num_classes=3, widths=(4, 6, 6, 8)).eval()
    other = build_model("riesz", num_classes=3, widths=(4, 6, 6, 8)).eval()
    other.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
    errors = equivariance_errors(model, STIRDataset(tiny_stir), torch.device("cpu"))
    assert errors["stage1"].shape == (3, 2, 6) and errors["stage2"].shape == (3, 2, 6)
    assert np.isfinite(errors["stage1"]).any() and np.isfinite(errors["stage2"]).any()
