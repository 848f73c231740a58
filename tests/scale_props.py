"""Shared scaffolding of the property tests of the Gaussian derivative network and the
Riesz network (tests/test_gaussder.py, tests/test_riesz.py).

The test image (Gaussian blobs sampled at any magnification), the error measure, the
eval-mode batch norms that let only the object's responses count, the standard CNN the
errors are set beside, the logits' change under rescaling, and the checks of the model
plumbing that the two models share (parameter count and shapes, gradients,
determinism, state dict and the evaluation's equivariance protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scalecnn.models import build_model, get_spec

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


def randomise_norms(
    model: torch.nn.Module, calibration: torch.Tensor, channel_dim: int = 1, seed: int = 1
) -> None:
    """Eval-mode batch norms with zero mean, random positive scales and small negative
    shifts, their variances set layer by layer to the second moments of the responses
    to ``calibration``: about half the units respond to the object, and the ReLU sets a
    blank background to 0 in every layer, so that only the object's responses count.

    ``model.layers`` and ``model.norms`` pair each layer with the batch norm of its
    output; ``channel_dim`` is the channel axis of the layers' outputs (1 for
    ``(B, C, H, W)``, 2 for the Riesz layers' spatial-major ``(H, W, C, B)``)."""
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
        dims = [d for d in range(outs[0].dim()) if d != channel_dim]
        second = sum((o**2).sum(dim=dims) for o in outs)
        norm.running_var.copy_(second / sum(o.numel() // c for o in outs) + 1e-12)


def standard_net() -> torch.nn.Module:
    """The standard CNN (one channel, 10 classes) of seed 0, float64, in eval mode."""
    torch.manual_seed(0)
    return build_model("standard", num_channels=1, num_classes=10).double().eval()


def logit_changes(net: torch.nn.Module, magnification: float) -> tuple[float, float]:
    """Relative change ``‖m(f) − m(g)‖ / ‖m(f)‖`` of the logits of ``net`` and of
    :func:`standard_net`, with their classifier biases set to zero, between an object
    ``f`` (about 12 px) and its copy ``g`` magnified by ``magnification`` on the same 64²
    canvas."""
    std = standard_net()
    for model in (net, std):
        model.lin.bias.data.zero_()
    f = blob_image(64, 0.7, centre=31.5)
    g = blob_image(64, 0.7 * magnification, centre=31.5)
    with torch.no_grad():
        net_change, std_change = (float((m(f) - m(g)).norm() / m(f).norm()) for m in (net, std))
    return net_change, std_change


# --- model plumbing -----------------------------------------------------------------------


def check_shapes_parameters_and_traces(name: str, channels: int) -> None:
    """Model ``name`` at its defaults for ``channels`` input channels and 36 classes:
    4 layers of 5 responses per input channel and no conv bias, batch norm (2 parameters
    per channel) and the linear classifier; logits ``(B, 36)``, the two stage maps at
    full resolution; registered as traced."""
    torch.manual_seed(0)
    model = build_model(name, num_channels=channels, num_classes=36)
    n = sum(p.numel() for p in model.parameters())
    expected = 5 * (channels * 24 + 24 * 32 + 32 * 48 + 48 * 48) + 2 * 152 + 48 * 36 + 36
    assert n == expected
    model.eval()
    x = torch.rand(2, channels, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 36)
        s1, s2 = model.feature_maps(x)
    assert s1.shape == (2, 32, 64, 64) and s2.shape == (2, 48, 64, 64)
    assert get_spec(name).traced


def check_gradients_reach_every_parameter(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Backpropagating the sum of ``model(x)`` gives every parameter a non-zero gradient."""
    model(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def check_deterministic_for_a_seed(net_class: Callable[..., torch.nn.Module]) -> None:
    """``net_class(1, 4, widths=(4, 4))`` built and run on random input twice after seed 7
    gives the same logits."""
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = net_class(1, 4, widths=(4, 4)).eval()
        with torch.no_grad():
            outs.append(model(torch.rand(2, 1, 32, 32)))
    assert torch.equal(outs[0], outs[1])


def check_state_dict_round_trip_and_equivariance_protocol(name: str, data: Path) -> None:
    """Weights of model ``name`` reload into a fresh model; the evaluation's equivariance
    error on the STIR file ``data`` (3 classes) runs on the stage maps (64² maps: the crop
    keeps the whole object) and is finite."""
    from scalecnn.data import STIRDataset
    from scalecnn.evaluation import equivariance_errors

    torch.manual_seed(0)
    model = build_model(name, num_classes=3, widths=(4, 6, 6, 8)).eval()
    other = build_model(name, num_classes=3, widths=(4, 6, 6, 8)).eval()
    other.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
    errors = equivariance_errors(model, STIRDataset(data), torch.device("cpu"))
    assert errors["stage1"].shape == (3, 2, 6) and errors["stage2"].shape == (3, 2, 6)
    assert np.isfinite(errors["stage1"]).any() and np.isfinite(errors["stage2"]).any()
