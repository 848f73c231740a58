"""Discrete scale-normalised Gaussian derivatives and the Gaussian derivative layer.

A Gaussian derivative layer (Lindeberg, "Scale-covariant and scale-invariant
Gaussian derivative networks", J. Math. Imaging Vis. 2022) maps every input
channel ``c`` to its scale-normalised Gaussian derivatives at one scale ``σ``,

    L_α,c = σ^|α| ∂^α (g(·; σ²) ∗ f_c),   α ∈ {x, y, xx, xy, yy, …},

and forms each output channel as a learned linear combination of them,
``out_o = Σ_c Σ_α w_{o,c,α} L_α,c``. Under a rescaling ``f'(x) = f(x/s)`` the
responses at ``σ' = sσ`` satisfy ``L'_α(x; σ') = L_α(x/s; σ)`` (scale covariance,
from the σ^|α| normalisation with γ = 1), so one set of weights serves every scale.

Discretisation (as in Perzanowski & Lindeberg, arXiv 2409.11140): smoothing with
the discrete analogue of the Gaussian kernel ``T(n; t) = e^{−t} I_n(t)``, ``t = σ²``
(``I_n``: modified Bessel function), applied separably, followed by central
differences ``δ_x = (f(x+1) − f(x−1))/2``, ``δ_xx = f(x+1) − 2 f(x) + f(x−1)`` (third
order: ``δ_x δ_xx``). Borders are extended by replication, so a constant background
has zero derivative response. σ is in units of the input's grid spacing.

Computation: the two 1-D smoothing passes are dense matrix products (the
replicated border folded into the matrix; GEMMs beat direct convolutions with
kernels of up to ``8σ + 3`` taps); the central differences, the scale
normalisation and the learned combination are then one small convolution whose
kernel ``Σ_α w_{o,c,α} σ^|α| δ^α`` (3×3, or 5×5 with third order) is rebuilt from
the weights in every call, optionally with a stride (subsampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import ive
from torch import nn

from scalecnn.layers.combination import combination_parameters

DERIVATIVES: dict[int, tuple[str, ...]] = {
    0: ("",),
    1: ("x", "y"),
    2: ("xx", "xy", "yy"),
    3: ("xxx", "xxy", "xyy", "yyy"),
}
"""Derivative multi-indices per order (``x``: along the width, ``y``: along the height)."""

DIFFERENCES: dict[int, tuple[float, ...]] = {
    0: (0.0, 0.0, 1.0, 0.0, 0.0),
    1: (0.0, -0.5, 0.0, 0.5, 0.0),
    2: (0.0, 1.0, -2.0, 1.0, 0.0),
    3: (-0.5, 1.0, 0.0, -1.0, 0.5),
}
"""1-D central-difference stencils per order, taps at offsets −2 … 2 (correlation order)."""

TRUNCATION = 4.0
"""Kernel radius in units of σ (plus one sample): tail mass below 1e-4."""


def discrete_gaussian(sigma: float, radius: int | None = None) -> torch.Tensor:
    """The discrete analogue of the Gaussian ``T(n; σ²) = e^{−σ²} I_n(σ²)``, ``n = −R … R``.

    ``R`` defaults to ``ceil(4σ) + 1``; the truncated kernel is renormalised to sum 1.
    Returns a float64 tensor ``(2R + 1,)``.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if radius is None:
        radius = math.ceil(TRUNCATION * sigma) + 1
    n = np.arange(-radius, radius + 1)
    kernel = ive(np.abs(n), sigma**2)
    return torch.from_numpy(kernel / kernel.sum())


def derivative_names(orders: Sequence[int]) -> tuple[str, ...]:
    """The derivative multi-indices of ``orders`` in a fixed order, e.g. ``(1, 2)`` → 5 names."""
    for order in orders:
        if order not in DERIVATIVES:
            raise ValueError(f"derivative order {order} not supported; expected 0 … 3")
    return tuple(name for order in sorted(set(orders)) for name in DERIVATIVES[order])


def derivative_stencils(names: Sequence[str]) -> torch.Tensor:
    """2-D central-difference stencils ``(D, k, k)`` (float64, correlation order).

    ``k`` = 3, or 5 when a third-order derivative is among ``names``; stencil ``d`` is
    the outer product of the y- and x-stencils of ``names[d]``.
    """
    margin = 2 if any(len(n) == 3 for n in names) else 1
    taps = slice(2 - margin, 3 + margin)
    out = []
    for name in names:
        sx = torch.tensor(DIFFERENCES[name.count("x")], dtype=torch.float64)[taps]
        sy = torch.tensor(DIFFERENCES[name.count("y")], dtype=torch.float64)[taps]
        out.append(sy[:, None] * sx[None, :])
    return torch.stack(out)


def smoothing_matrix(n: int, sigma: float, margin: int = 0) -> torch.Tensor:
    """Discrete Gaussian smoothing of a length-``n`` signal with replicated borders, as a matrix.

    Row ``p + margin`` holds the weights of output position ``p = −margin … n − 1 + margin``:
    ``out[p] = Σ_k T(k; σ²) · in[clamp(p − k, 0, n − 1)]``. Returns ``(n + 2·margin, n)``
    float64.
    """
    kernel = discrete_gaussian(sigma).numpy()
    r = kernel.size // 2
    p = np.arange(-margin, n + margin)[:, None]
    k = np.arange(-r, r + 1)[None, :]
    cols = np.clip(p - k, 0, n - 1)
    rows = np.broadcast_to(p + margin, cols.shape)
    matrix = np.zeros((n + 2 * margin, n))
    np.add.at(matrix, (rows, cols), np.broadcast_to(kernel, cols.shape))
    return torch.from_numpy(matrix)


class GaussianDerivativeLayer(nn.Module):
    """Learned combinations of scale-normalised discrete Gaussian derivatives.

    Args:
        in_channels, out_channels: feature channels.
        orders: derivative orders used (subset of 0 … 3; default 1 and 2: ``D`` = 5).
        bias: add a learned bias per output channel.

    ``weight`` ``(C_out, C_in, D)`` is shared by every scale: ``C_out · C_in · D (+ C_out)``
    parameters. ``forward(x, sigma, stride)``: ``(B, C_in, H, W)`` → ``(B, C_out, H', W')``
    with ``H' = ceil(H / stride)`` (outputs at input positions ``0, stride, 2·stride …``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        orders: Sequence[int] = (1, 2),
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.names = derivative_names(orders)
        stencils = derivative_stencils(self.names)
        self.margin = stencils.shape[-1] // 2
        self.register_buffer("stencils", stencils.to(torch.float32), persistent=False)
        self.register_buffer(
            "orders",
            torch.tensor([len(n) for n in self.names], dtype=torch.float32),
            persistent=False,
        )
        self.weight, bias_param = combination_parameters(
            in_channels, out_channels, len(self.names), bias
        )
        self.register_parameter("bias", bias_param)
        self._matrices: dict[tuple, torch.Tensor] = {}

    def extra_repr(self) -> str:
        c_out, c_in, _ = self.weight.shape
        return f"{c_in}, {c_out}, derivatives={self.names}, bias={self.bias is not None}"

    def _matrix(self, n: int, sigma: float, x: torch.Tensor) -> torch.Tensor:
        key = (n, round(sigma, 9), x.device, x.dtype)
        if key not in self._matrices:
            matrix = smoothing_matrix(n, sigma, self.margin)
            self._matrices[key] = matrix.to(device=x.device, dtype=x.dtype)
        return self._matrices[key]

    def smooth(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, C, H + 2m, W + 2m)``: smoothed, with the margin ``m`` the
        differences consume (replicated border)."""
        h, w = x.shape[-2:]
        out = torch.matmul(x, self._matrix(w, sigma, x).T)  # along the width
        return torch.matmul(self._matrix(h, sigma, x), out)  # along the height

    def kernel(self, sigma: float) -> torch.Tensor:
        """The effective convolution kernel ``(C_out, C_in, k, k)`` at scale ``sigma``."""
        scaled = self.stencils * (sigma**self.orders)[:, None, None]
        return torch.einsum("ocd,dyx->ocyx", self.weight, scaled.to(self.weight.dtype))

    def derivatives(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Scale-normalised derivatives ``(B, C, D, H, W)`` (for inspection; not the fast path)."""
        b, c, h, w = x.shape
        smoothed = self.smooth(x, sigma).reshape(b * c, 1, h + 2 * self.margin, -1)
        scaled = self.stencils * (sigma**self.orders)[:, None, None]
        out = F.conv2d(smoothed, scaled[:, None].to(x.dtype))
        return out.view(b, c, -1, h, w)

    def forward(self, x: torch.Tensor, sigma: float, stride: int = 1) -> torch.Tensor:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        return F.conv2d(self.smooth(x, sigma), self.kernel(sigma), self.bias, stride=stride)
