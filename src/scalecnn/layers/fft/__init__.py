"""Everything computed in the frequency domain: SiConv2d's fast path, its fusion with
ScalePool, and the plain 2-D/3-D convolutions of the baselines.

* :func:`siconv2d_fft` — ``SiConv2d.forward_direct`` through the FFT
  (:mod:`~scalecnn.layers.fft.autograd`, built on :mod:`~scalecnn.layers.fft.plan`,
  :mod:`~scalecnn.layers.fft.chunks` and :mod:`~scalecnn.layers.fft.transforms`);
* :func:`siconv_scale_pool` — ``pool(conv(x))`` without the stacked scales
  (:mod:`~scalecnn.layers.fft.pool` and its ``pool_*`` modules);
* :func:`fft_conv`, :func:`conv_nd`, :class:`AutoConv3d` — ``F.conv2d``/``F.conv3d``
  by FFT (:mod:`~scalecnn.layers.fft.conv`, with the chunked channel mixing of
  :mod:`~scalecnn.layers.fft.mixing` and the sparse backward of
  :mod:`~scalecnn.layers.fft.sparse_grad`; :func:`check_conv_method` checks the
  ``method`` they and the baseline layers take, one of :data:`CONV_METHODS`, both
  from :mod:`scalecnn.layers.fastpath`);
* :func:`direct_conv`, :class:`FastConv2d` — the spatial-domain path of those
  convolutions: the library's faster kernel (oneDNN or NNPACK) and the sparse backward
  (:mod:`~scalecnn.layers.fft.direct`);
* :func:`is_faster`, :func:`fft_is_faster`, :func:`nnpack_is_faster` — which path
  ``method='auto'`` takes under the switches' ``auto`` mode
  (:mod:`~scalecnn.layers.fft.cost`, :mod:`~scalecnn.layers.fft.direct`; the switches
  and thresholds: :mod:`scalecnn.layers.fastpath`).

The algorithms, the design choices and the measurements behind them are described
in ``docs/fft_path.md``; the benchmarks in ``benchmarks/``.
"""

from scalecnn.layers.fastpath import CONV_METHODS, check_conv_method
from scalecnn.layers.fft.autograd import siconv2d_fft
from scalecnn.layers.fft.conv import AutoConv3d, conv_nd, fft_conv
from scalecnn.layers.fft.cost import fft_is_faster, is_faster
from scalecnn.layers.fft.direct import FastConv2d, direct_conv, nnpack_is_faster
from scalecnn.layers.fft.plan import next_fast_len
from scalecnn.layers.fft.pool import fuses_by_default, siconv_scale_pool

__all__ = [
    "CONV_METHODS",
    "AutoConv3d",
    "FastConv2d",
    "check_conv_method",
    "conv_nd",
    "direct_conv",
    "fft_conv",
    "fft_is_faster",
    "fuses_by_default",
    "is_faster",
    "next_fast_len",
    "nnpack_is_faster",
    "siconv2d_fft",
    "siconv_scale_pool",
]
