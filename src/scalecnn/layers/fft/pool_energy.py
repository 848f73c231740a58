"""Energy pooling without the output maps: each scale's sum from window sums of the input.

The sum of a scale's outputs is linear in the input, so all ``B·O·S`` sums come
from window sums of the input mapped onto the base kernel
(``Σ W ⊙ E_h x E_wᵀ``, one small matmul, see :func:`window_sum_matrices`); then
only the chosen scale of each ``(b, o)`` is computed
(:func:`~scalecnn.layers.fft.pool_chosen.chosen_outputs`).
"""

from __future__ import annotations

import functools

import torch

from scalecnn.layers.fft.plan import ConvConfig, FFTPlan
from scalecnn.layers.fft.pool_chosen import chosen_outputs
from scalecnn.layers.fft.transforms import complex_weights, input_spectrum
from scalecnn.layers.interpolation import interpolation_matrix_1d

__all__ = ["energy_forward", "energy_scores", "window_sum_matrices"]


@functools.lru_cache(maxsize=32)
def window_sum_matrices(
    k: int, num_scales: int, mode: str, padding: bool, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per scale, ``E (k, n)`` with ``Σ_valid outputs = Σ W ⊙ (E_h · x · E_wᵀ)`` (float64).

    Scale ``s`` (kernel ``t = k + 2s`` = ``A w Aᵀ · k²/t²``) reads input position
    ``a = q + i − off`` for output ``q < L = n + 2·off − t + 1`` and kernel tap ``i < t``
    (``off = 0`` without padding, ``t // 2`` with), so the sum of its
    outputs along one axis is ``Σ_i k_i Σ_a x_a [0 ≤ a − i + off < L]``: the window
    indicator ``R (t, n)``, mapped to the base kernel by ``(k/t)·Aᵀ``. Returns
    ``(E (S, k, n), counts (S,))``, the number of outputs per scale along the axis
    (the bias counts once per output).
    """
    mats, counts = [], []
    a_pos = torch.arange(n, dtype=torch.float64)[None, :]
    for s in range(num_scales):
        t = k + 2 * s
        off = t // 2 if padding else 0
        length = n + 2 * off - t + 1
        i_pos = torch.arange(t, dtype=torch.float64)[:, None]
        shifted = a_pos - i_pos + off
        window = ((shifted >= 0) & (shifted < length)).to(torch.float64)  # (t, n)
        mats.append(interpolation_matrix_1d(k, t, mode).T @ window * (k / t))
        counts.append(length)
    return torch.stack(mats), torch.tensor(counts, dtype=torch.float64)


def energy_scores(
    cfg: ConvConfig, x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Sum over each scale's valid outputs, ``(B, O, S)``, without computing the outputs.

    ``cfg``: the SiConv2d's configuration; ``x (B, C, H, W)``, ``weights (O, C, k, k)``,
    ``bias (O,)``. Cost ``B·C·S·k·H·W`` (one matmul) instead of all ``B·O·S`` output
    maps.
    """
    k, num_scales, mode, padding = cfg.k, cfg.num_scales, cfg.interp_mode, cfg.padding
    b, c, h, w = x.shape
    e_h, n_h = window_sum_matrices(k, num_scales, mode, padding, h)
    e_w, n_w = window_sum_matrices(k, num_scales, mode, padding, w)
    e_h, e_w = e_h.to(x), e_w.to(x)
    rows = e_h.reshape(num_scales * k, h) @ x.permute(2, 0, 1, 3).reshape(h, b * c * w)
    rows = rows.view(num_scales, k * b * c, w)
    z = torch.bmm(rows, e_w.transpose(1, 2))  # (S, k_p·B·C, k_q)
    z = z.view(num_scales, k, b, c, k).permute(0, 2, 3, 1, 4).reshape(num_scales, b, c * k * k)
    scores = z @ weights.reshape(weights.shape[0], c * k * k).T  # (S, B, O)
    scores = scores + bias * (n_h * n_w).to(x)[:, None, None]
    return scores.permute(1, 2, 0)


def energy_forward(
    plan: FFTPlan, cfg: ConvConfig, x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy pooling: scores from window sums, then only the chosen scale per ``(b, o)``.

    ``x (B, C, H, W)``, ``weights (O, C, k, k)``, ``bias (O,)``. Returns
    ``(out (B, O, H', W'), indices (B, O), input spectrum)``.
    """
    idx = energy_scores(cfg, x, weights, bias).argmax(dim=2)  # first maximum
    xf = input_spectrum(x, plan)
    out = chosen_outputs(plan, xf, complex_weights(weights, xf.dtype), bias, idx)
    return out.contiguous(), idx, xf
