"""The steerable scale-equivariant models: hermite (SESN) and disco (DISCO).

Both are ``SESConv_Z2_H(C,16) → ReLU → SESConv_H_H(16,32, scale_size 1) → ReLU →
global max over (S, H, W) → Linear(32, classes)`` with 15×15 kernels built from
49 basis functions (effective size 7), no padding (64 → 50 → 36). They differ
only in the basis: hermite builds the SESN "hermite_b" basis, disco takes the
final DISCO "disco_b" basis (already mixed by the Hermite matrix and
normalised, see :mod:`scalecnn.bases`) as ``basis=``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from scalecnn.bases import hermite_basis
from scalecnn.layers.steerable import SESConv_H_H, SESConv_Z2_H
from scalecnn.models.registry import register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet
from scalecnn.study import DISCO_SCALES

KERNEL_SIZE = 15
EFFECTIVE_SIZE = 7
HERMITE_SCALES = (2.0, 2.52, 3.17, 4.0)
HERMITE_MULT = 1.5
MAX_ORDER = 4
BASIS_SHAPE = (EFFECTIVE_SIZE**2, len(DISCO_SCALES), KERNEL_SIZE, KERNEL_SIZE)
"""Shape ``(F, S, K, K)`` of both models' bases: ``(49, 4, 15, 15)``."""


def steerable_net(
    num_channels: int, num_classes: int, basis: torch.Tensor, method: str = "auto"
) -> TwoStageNet:
    """The shared architecture on a basis ``(F, S, K, K)``; ``method``: the steerable
    layers' (``auto``, ``direct`` or ``fft``).

    Shapes: ``(B, C, 64, 64)`` → stage 1 ``(B, 16, S, 50, 50)`` → stage 2
    ``(B, 32, S, 36, 36)`` (K = 15) → logits ``(B, classes)``.
    """
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        SESConv_Z2_H(num_channels, c1, basis, bias=True, method=method),
        SESConv_H_H(c1, c2, 1, basis, bias=True, method=method),
        num_classes,
    )


def load_basis(basis: torch.Tensor | np.ndarray | str | Path | None) -> torch.Tensor:
    """A ``(49, 4, 15, 15)`` float32 basis from a tensor, an array or a ``.pt``/``.npy`` file.

    Files are read safely: ``torch.load(weights_only=True)`` (the file must hold a
    tensor) or ``np.load(allow_pickle=False)``.

    Raises:
        ValueError: ``basis`` is missing, of another file type or of another shape.
        FileNotFoundError: the file does not exist.
    """
    expected = f"a {BASIS_SHAPE} tensor or the path of a .pt/.npy file holding one"
    if basis is None:
        raise ValueError(f"the disco model needs basis=: {expected}")
    if isinstance(basis, str | Path):
        path = Path(basis)
        if path.suffix not in (".pt", ".npy"):
            raise ValueError(f"basis file {path} is neither .pt nor .npy; expected {expected}")
        if not path.is_file():
            raise FileNotFoundError(f"basis file not found: {path}")
        if path.suffix == ".pt":
            basis = torch.load(path, map_location="cpu", weights_only=True)
        else:
            basis = np.load(path, allow_pickle=False)
    if isinstance(basis, np.ndarray):
        basis = torch.from_numpy(basis)
    if not isinstance(basis, torch.Tensor):
        raise ValueError(f"basis is a {type(basis).__name__}; expected {expected}")
    if tuple(basis.shape) != BASIS_SHAPE:
        raise ValueError(f"basis has shape {tuple(basis.shape)}; expected {expected}")
    return basis.to(torch.float32)


@register_model("hermite")
def hermite(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    method: str = "auto",
    **_: object,
) -> nn.Module:
    """SESN with the "hermite_b" basis (scales 2…4, mult 1.5, order 4).

    The kernel is always 15×15 (effective 7); ``kernel_size`` and ``interpolation``
    are unused.
    """
    basis = hermite_basis(KERNEL_SIZE, EFFECTIVE_SIZE, HERMITE_SCALES, HERMITE_MULT, MAX_ORDER)
    return steerable_net(num_channels, num_classes, basis, method)


@register_model("disco", needs_basis=True)
def disco(
    kernel_size: int,
    interpolation: str,
    num_channels: int,
    num_classes: int,
    basis: torch.Tensor | np.ndarray | str | Path | None = None,
    method: str = "auto",
    **_: object,
) -> nn.Module:
    """DISCO on the final "disco_b" basis given as ``basis=`` (see :func:`load_basis`).

    The kernel is always 15×15 (effective 7); ``kernel_size`` and ``interpolation``
    are unused.
    """
    return steerable_net(num_channels, num_classes, load_basis(basis), method)
