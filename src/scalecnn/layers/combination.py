"""The learned part of the layers that combine fixed responses per input channel.

:class:`~scalecnn.layers.gaussian_derivative.GaussianDerivativeLayer` (Gaussian
derivatives) and :class:`~scalecnn.layers.riesz.RieszLayer` (Riesz transforms) both
form each output channel as ``out_o = Σ_c Σ_t w_{o,c,t} r_{t,c}`` from ``T`` fixed
responses ``r_{t,c}`` of every input channel ``c``, plus an optional bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def combination_parameters(
    in_channels: int, out_channels: int, terms: int, bias: bool
) -> tuple[nn.Parameter, nn.Parameter | None]:
    """``weight (C_out, C_in, T)`` and ``bias (C_out,)`` (``None`` without a bias),
    initialised as ``nn.Conv2d``'s with a fan-in of ``C_in · T``: ``kaiming_uniform_(a=√5)``
    on the weight, the bias uniform in ``±1/√(C_in · T)`` (drawn after the weight)."""
    weight = nn.Parameter(torch.empty(out_channels, in_channels, terms))
    nn.init.kaiming_uniform_(weight.view(out_channels, -1), a=math.sqrt(5))
    if not bias:
        return weight, None
    bias_param = nn.Parameter(torch.empty(out_channels))
    bound = 1 / math.sqrt(in_channels * terms)
    nn.init.uniform_(bias_param, -bound, bound)
    return weight, bias_param
