"""The chunked frequency-domain channel mixing (scalecnn.layers.fft.mixing)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scalecnn.layers.fft.mixing as mixing
from scalecnn.layers.fft import fft_conv
from scalecnn.layers.fft.mixing import spectral_mix


def _einsum_mix(x: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """The definition, one group at a time: y[b, o, f] = Σ_c x[b, c, f] · w[f, c, o]."""
    b, c, n = x.shape
    o = w.shape[2]
    xg = x.view(b, groups, c // groups, n)
    wg = w.view(n, c // groups, groups, o // groups)
    return torch.einsum("bgcf,fcgo->bgof", xg, wg).reshape(b, o, n)


def _complex(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.complex128, generator=g)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_spectral_mix_matches_its_definition_across_many_chunks(groups, monkeypatch):
    # 53 frequencies in chunks of 4 (the last one short): every chunk boundary is crossed
    monkeypatch.setattr(mixing, "_chunk_len", lambda *args: 4)
    x, w = _complex(3, 6, 53, seed=0), _complex(53, 6 // groups, 12, seed=1)
    x.requires_grad_(), w.requires_grad_()
    y, expected = spectral_mix(x, w, groups), _einsum_mix(x, w, groups)
    assert y.shape == (3, 12, 53)
    assert torch.allclose(y, expected, atol=1e-12)
    g = _complex(3, 12, 53, seed=2)
    got = torch.autograd.grad(y, (x, w), g)
    want = torch.autograd.grad(expected, (x, w), g)
    for a, e in zip(got, want, strict=True):
        assert torch.allclose(a, e, atol=1e-12)


def test_spectral_mix_passes_gradcheck():
    x, w = _complex(2, 4, 7, seed=3), _complex(7, 2, 6, seed=4)
    x.requires_grad_(), w.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: spectral_mix(a, b, 2), (x, w))


def test_spectral_mix_skips_gradients_nobody_needs():
    x, w = _complex(2, 4, 5, seed=5).requires_grad_(), _complex(5, 4, 3, seed=6)
    (gx,) = torch.autograd.grad(spectral_mix(x, w).abs().sum(), (x,))
    assert gx.shape == x.shape and w.grad is None


def test_fft_conv_3d_with_many_chunks_matches_conv3d(monkeypatch):
    """The chunk loop inside a whole 3-D convolution, forward and backward."""
    monkeypatch.setattr(mixing, "_chunk_len", lambda *args: 37)
    torch.manual_seed(2)
    x = torch.randn(2, 4, 9, 12, 11, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    y, expected = fft_conv(x, w), F.conv3d(x, w)
    assert torch.allclose(y, expected, atol=1e-10)
    g = torch.randn_like(expected)
    for a, e in zip(
        torch.autograd.grad(y, (x, w), g), torch.autograd.grad(expected, (x, w), g), strict=True
    ):
        assert torch.allclose(a, e, atol=1e-10)


def test_chunk_length_keeps_a_chunk_near_the_byte_target():
    # conv3d's shape: B = 16, C = 16, O = 32, 55,800 frequencies, complex64
    n = mixing._chunk_len(16, 16, 32, 16, 55_800, 8)
    per_freq = (16 * 16 + 32 * 16 + 16 * 32) * 8
    assert n == mixing.CHUNK_BYTES // per_freq
    assert mixing._chunk_len(16, 16, 32, 16, 10, 8) == 10  # never more than there are
    assert mixing._chunk_len(10**6, 1, 1, 1, 10, 8) == 1  # never fewer than one
