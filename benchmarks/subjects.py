"""What the benchmarks time: the layer shapes, the models and one training step of each.

The SiConv2d layers of the paper (and, without ``--quick``, a few more shapes), conv3d's
``AutoConv3d`` on its stacked scales, and every registered model built with the
defaults (k = 7, bicubic, 1 channel, 36 classes) with its fast-path layers set to a
chosen ``method``. Inputs are ``(BATCH, C, H, W)``; model steps use ``BATCH × 1 × IMAGE
× IMAGE`` images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

LAYERS = (
    # the paper's two SiConv2d layers (k = 7, bicubic, no padding)
    {"name": "layer1", "cin": 1, "cout": 16, "size": 64, "k": 7, "padding": False},
    {"name": "layer2", "cin": 16, "cout": 32, "size": 58, "k": 7, "padding": False},
)
EXTRA_LAYERS = (
    {"name": "layer1_pad", "cin": 1, "cout": 16, "size": 64, "k": 7, "padding": True},
    {"name": "layer2_pad", "cin": 16, "cout": 32, "size": 58, "k": 7, "padding": True},
    {"name": "layer2_k3", "cin": 16, "cout": 32, "size": 58, "k": 3, "padding": False},
    {"name": "small_k3", "cin": 4, "cout": 8, "size": 15, "k": 3, "padding": False},
)
CONV3D_LAYER = {
    # conv3d's Conv3d on the stacked scales of its SiConv2d layer (batch 16)
    "name": "conv3d_layer",
    "kind": "conv3d",
    "cin": 16,
    "cout": 32,
    "k": 7,
    "input": (16, 16, 29, 58, 58),
}
BATCH = 16
NUM_CLASSES = 36
IMAGE = 64


def make_layer(spec: dict, method: str, device: str):
    """The layer of ``spec`` with ``method`` and its input (seeded): a ``SiConv2d``
    (``LAYERS``) or, for ``kind == "conv3d"``, an ``AutoConv3d`` (``CONV3D_LAYER``)."""
    from scalecnn.layers import SiConv2d, expected_num_scales

    if spec.get("kind") == "conv3d":
        from scalecnn.layers.fft import AutoConv3d

        torch.manual_seed(0)
        layer = AutoConv3d(spec["cin"], spec["cout"], spec["k"], method=method).to(device)
        x = torch.randn(*spec["input"], device=device, requires_grad=True)
        return layer, x
    s = expected_num_scales(spec["size"], spec["size"], spec["k"])
    torch.manual_seed(0)
    layer = SiConv2d(
        spec["cin"],
        spec["cout"],
        s,
        spec["k"],
        padding=spec["padding"],
        interp_mode=spec.get("interp", "bicubic"),
        method=method,
    ).to(device)
    x = torch.randn(BATCH, spec["cin"], spec["size"], spec["size"], device=device)
    x.requires_grad_(spec["cin"] > 1)  # the first layer's input needs no gradient
    return layer, x


def layer_step(layer, x):
    """One forward + backward of ``layer`` on ``x`` with a fixed random output gradient."""
    grad = None

    def step() -> None:
        nonlocal grad
        y = layer(x)
        if grad is None:
            grad = torch.randn_like(y)
        y.backward(grad)
        layer.zero_grad(set_to_none=True)
        x.grad = None

    return step


FAST_KINDS = ("siconv", "conv")
"""Layers with a fast path and a ``method`` attribute: ``siconv`` (``SiConv2d``,
:mod:`scalecnn.layers.fft`) and ``conv`` (the FFT convolution of
:mod:`scalecnn.layers.fft.conv`: ``AutoConv3d``, ``XuConv2d``, ``SESConv_Z2_H`` and
``SESConv_H_H``)."""


def fast_layers(model: torch.nn.Module, kinds: tuple[str, ...] = FAST_KINDS) -> list:
    """The model's fast-path layers of ``kinds`` (see :data:`FAST_KINDS`)."""
    from scalecnn.layers import SiConv2d
    from scalecnn.layers.fft import AutoConv3d
    from scalecnn.layers.steerable import SESConv_H_H, SESConv_Z2_H
    from scalecnn.layers.xu import XuConv2d

    types = {"siconv": (SiConv2d,), "conv": (AutoConv3d, XuConv2d, SESConv_Z2_H, SESConv_H_H)}
    wanted = tuple(t for kind in kinds for t in types[kind])
    return [mod for mod in model.modules() if isinstance(mod, wanted)]


def force_method(model: torch.nn.Module, method: str, kinds: tuple[str, ...] = FAST_KINDS) -> int:
    """Set ``method`` on the model's fast-path layers of ``kinds`` (``auto`` leaves them
    as built); returns how many there are."""
    layers = fast_layers(model, kinds)
    if method != "auto":
        for mod in layers:
            mod.method = method
    return len(layers)


STAND_IN_BASIS = (
    "built with the Hermite basis of scalecnn.models.steerable as a stand-in for its "
    "trained basis: same shape (49, 4, 15, 15), same cost"
)


def basis_kwargs(name: str, basis: str | None) -> tuple[dict, str | None]:
    """Extra ``build_model`` arguments of model ``name`` and a note: a model that needs a
    basis gets ``basis`` (a file) or, without one, the Hermite basis (same shape and cost)."""
    from scalecnn.models import get_spec

    if not get_spec(name).needs_basis:
        return {}, None
    if basis is not None:
        return {"basis": basis}, f"basis {basis}"
    from scalecnn.models import steerable as st

    stand_in = st.hermite_basis(
        st.KERNEL_SIZE, st.EFFECTIVE_SIZE, st.HERMITE_SCALES, st.HERMITE_MULT, st.MAX_ORDER
    )
    return {"basis": stand_in}, STAND_IN_BASIS


def train_step(model: torch.nn.Module, device: str) -> Callable[[], None]:
    """One training step of ``model``: forward, cross-entropy, backward and Adam step on a
    fixed seeded batch ``(BATCH, 1, IMAGE, IMAGE)``."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, 1, IMAGE, IMAGE, device=device)
    y = torch.randint(0, NUM_CLASSES, (BATCH,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


@contextlib.contextmanager
def plain_library() -> Iterator[None]:
    """Inside: the direct convolutions plain ``F.conv2d``/``F.conv3d`` (oneDNN forward,
    dense backward) and the pooled SiConv2d layers with their frequency-domain backward:
    the state before ``scalecnn.layers.fft.direct`` and ``pool_sparse``."""
    import scalecnn.layers.fft.conv as conv
    import scalecnn.layers.fft.direct as direct
    import scalecnn.layers.kanazawa as kanazawa
    from scalecnn.layers.fastpath import fastpath

    def plain(x, weight, bias=None, padding=0, groups=1):
        fn = F.conv3d if x.dim() == 5 else F.conv2d
        return fn(x, weight, bias, padding=padding, groups=groups)

    patches = [(m, "direct_conv", plain) for m in (conv, direct, kanazawa)]
    saved = [(m, name, getattr(m, name)) for m, name, _ in patches]
    try:
        for m, name, value in patches:
            setattr(m, name, value)
        with fastpath(nnpack="off", sparse_pool_backward="off"):
            yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)


def plain_step(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` run inside :func:`plain_library`."""

    def run() -> None:
        with plain_library():
            step()

    return run


def make_model(
    name: str,
    device: str,
    method: str = "auto",
    fuse_pool: bool | None = None,
    kinds: tuple[str, ...] = FAST_KINDS,
    basis: str | None = None,
) -> torch.nn.Module:
    """Model ``name`` (seeded) with its fast-path layers of ``kinds`` set to ``method``."""
    from scalecnn.models import build_model

    extra, _ = basis_kwargs(name, basis)
    torch.manual_seed(0)
    model = build_model(
        name,
        kernel_size=7,
        interpolation="bicubic",
        num_channels=1,
        num_classes=NUM_CLASSES,
        **extra,
    ).to(device)
    force_method(model, method, kinds)
    if hasattr(model, "fuse_pool"):
        model.fuse_pool = fuse_pool
    return model


def has_scale_pool(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a ``ScalePool`` (so that fusing its pooling matters)."""
    from scalecnn.layers import ScalePool

    return any(isinstance(m, ScalePool) for m in model.modules())
