"""Layers: kernel interpolation, SiConv2d, scale pooling and the baseline layers.

The paper's README usage works unchanged::

    from scalecnn.layers import SiConv2d, ScalePool
    conv = SiConv2d(3, 16, 29, 7, interp_mode='bicubic')
    pool = ScalePool(mode='pixel')

The fast paths' switches and thresholds are in :mod:`scalecnn.layers.fastpath`
(``from scalecnn.layers.fastpath import fastpath, set_fastpath``).
"""

from scalecnn.layers import fastpath
from scalecnn.layers.fft import siconv_scale_pool
from scalecnn.layers.interpolation import INTERP_MODES, interpolate_kernel
from scalecnn.layers.pooling import POOL_MODES, GlobalMaxPool, ScalePool
from scalecnn.layers.siconv import SiConv2d, expected_num_scales

__all__ = [
    "INTERP_MODES",
    "POOL_MODES",
    "GlobalMaxPool",
    "ScalePool",
    "SiConv2d",
    "expected_num_scales",
    "fastpath",
    "interpolate_kernel",
    "siconv_scale_pool",
]
