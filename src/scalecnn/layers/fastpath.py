"""The switchboard of the fast paths: one switch per path, and the thresholds of ``auto``.

The layers choose their fast paths by thresholds fitted on two 2-core CPUs; on another
machine, or to compare a fast path with its definition, each choice can be forced. A
switch is one of :data:`MODES`:

* ``auto`` (default): the fitted thresholds below decide, as without the switchboard;
* ``on``: the fast path wherever it is applicable;
* ``off``: the direct/plain path.

The switches (:data:`KINDS`):

* ``siconv_fft``: SiConv2d by FFT (``SiConv2d(method='auto')``; :data:`COSTS`);
* ``fused_pool``: SiConv2d + ScalePool fused (``siconv_scale_pool(fuse=None)``);
* ``conv_fft``: the plain convolutions by FFT (``conv_nd(method='auto')``: AutoConv3d,
  XuConv2d, the steerable layers; :data:`CPU_MIN_KERNEL_VOLUME`,
  :data:`CPU_MIN_GROUP_INPUTS`);
* ``nnpack``: NNPACK's forward instead of oneDNN's (``direct_conv``, FastConv2d;
  :data:`NNPACK_KERNEL_SIZES` and the other ``NNPACK_*``);
* ``sparse_backward``: a convolution's backward from its sparse output gradient
  (``direct_conv``, ``fft_conv``; :data:`SPARSE_WORK_LIMIT`, :data:`SPARSE_MAX_DENSITY`,
  :data:`SPARSE_SMALL_WORK`);
* ``sparse_pool_backward``: the pooled SiConv2d's backward from its sparse pooled
  gradient (:data:`SPARSE_POOL_WORK_LIMIT`, :data:`SPARSE_MAX_DENSITY`,
  :data:`SPARSE_SMALL_WORK`).

A layer's own ``method='direct'``/``'fft'`` wins over ``siconv_fft`` and ``conv_fft``;
an explicit ``fuse=`` wins over ``fused_pool``. The mode of a switch is, in this order,
the one set by :func:`set_fastpath` or :func:`fastpath` (process-wide, not per thread),
else the environment variable ``SCALECNN_FASTPATH_<KIND>`` (e.g.
``SCALECNN_FASTPATH_SICONV_FFT=off``), read at every choice (its parse is cached),
else ``auto``. A forward decides its own paths when it runs; the two backward switches
are read by the forward too (when the graph is recorded), so ``with fastpath(...):``
around the forward also governs the backward it records.

The thresholds are read from this module at every choice, so ``monkeypatch.setattr(
fastpath, "SPARSE_WORK_LIMIT", ...)`` reaches every layer. The measurements behind them:
``docs/fft_path.md``. This module imports nothing from :mod:`scalecnn.layers`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

__all__ = [
    "CONV_METHODS",
    "COSTS",
    "CPU_MIN_GROUP_INPUTS",
    "CPU_MIN_KERNEL_VOLUME",
    "ENV_PREFIX",
    "KINDS",
    "MODES",
    "NNPACK_ANY_INPUTS_FROM",
    "NNPACK_KERNEL_SIZES",
    "NNPACK_MIN_INPUTS",
    "NNPACK_SLOWER_ON",
    "SPARSE_MAX_DENSITY",
    "SPARSE_POOL_WORK_LIMIT",
    "SPARSE_SMALL_WORK",
    "SPARSE_WORK_LIMIT",
    "check_conv_method",
    "env_variable",
    "fastpath",
    "mode",
    "modes",
    "set_fastpath",
]

KINDS = (
    "siconv_fft",
    "fused_pool",
    "conv_fft",
    "nnpack",
    "sparse_backward",
    "sparse_pool_backward",
)
"""The switches, one per fast path."""
MODES = ("auto", "on", "off")
"""``auto``: the thresholds decide; ``on``: the fast path where applicable; ``off``: never."""
ENV_PREFIX = "SCALECNN_FASTPATH_"
"""A switch's environment variable is this prefix and its kind in capitals."""
CONV_METHODS = ("auto", "direct", "fft")
"""The ``method`` of SiConv2d, ``conv_nd``, AutoConv3d, XuConv2d, the steerable layers and
``build_model``: ``auto`` leaves the choice to the switchboard."""

# ---------------------------------------------------------------- SiConv2d by FFT

COSTS: dict[str, dict[str, float]] = {
    "train": {  # forward + backward
        "direct_mac": 1 / 26e9,  # per multiply-add of the forward, times 2 or 3 passes
        "direct_scale": 1.5e-4,
        "fft_point_log": 0.51e-9,  # per (image · point · log2 points) of the FFTs
        "fft_product": 1.04e-9,  # per complex product term B·C·O·S·nh·fw
        "fft_fixed": 3e-4,
        "fft_chunk": 2e-4,
    },
    "infer": {  # forward only
        "direct_mac": 1 / 60e9,
        "direct_mac_few_channels": 1 / 40e9,  # C_in < 4: convolutions run slower
        "direct_scale": 6e-5,
        "fft_point_log": 0.3e-9,
        "fft_product": 0.35e-9,
        "fft_fixed": 1.5e-4,
        "fft_chunk": 1e-4,
    },
}
"""Seconds per unit of work of the direct and FFT cost models of SiConv2d
(``cost.is_faster``), for training and for inference. Fitted to one-thread process times
of 15 layer shapes on a 2-core AMD EPYC with AVX-512."""

# ---------------------------------------------------------------- plain convolutions by FFT

CPU_MIN_KERNEL_VOLUME = 100
"""Kernel elements per (output, input) channel pair from which a plain convolution runs by
FFT on the CPU (``cost.fft_is_faster``); below it the direct kernels win. Measured on a
2-core AMD EPYC with AVX-512."""
CPU_MIN_GROUP_INPUTS = 4
"""Input channels per group below which a plain convolution stays direct on the CPU (the
direct work grows with C·O, the FFT's transforms with C + O). Measured on a 2-core AMD EPYC
with AVX-512."""

# ---------------------------------------------------------------- NNPACK

NNPACK_KERNEL_SIZES = range(5, 12)
"""Kernel sizes (largest side) for which NNPACK's forward beats oneDNN's. Measured on a
2-core AMD EPYC with AVX2 (no AVX-512)."""
NNPACK_MIN_INPUTS = 8
"""Input channels per group below which oneDNN stays faster for kernels up to 7×7. Measured
on a 2-core AMD EPYC with AVX2."""
NNPACK_ANY_INPUTS_FROM = 9
"""Kernel size from which NNPACK wins with any number of input channels. Measured on a
2-core AMD EPYC with AVX2."""
NNPACK_SLOWER_ON = ("AVX512",)
"""CPU capabilities (``torch.backends.cpu.get_cpu_capability()``) where ``auto`` keeps
oneDNN. Not a speed threshold (NNPACK is faster on AVX-512 too, measured on a 2-core AMD
EPYC): it keeps version 1.0's arithmetic, and so its record's runs, on AVX-512 CPUs."""

# ---------------------------------------------------------------- sparse backwards

SPARSE_WORK_LIMIT = 1 << 24
"""Most products (non-zero gradient entries × input channels per group × kernel volume)
the sparse backward of a convolution takes on; beyond it the dense backward runs. Set on a
2-core AMD EPYC with AVX2 (conv3d's step)."""
SPARSE_MAX_DENSITY = 1 / 256
"""Largest fraction of non-zero gradient entries for the sparse backwards (unless their
work is below :data:`SPARSE_SMALL_WORK`): per product their gathers and scatters cost about
a hundred times a library kernel's multiply-add. Measured on a 2-core AMD EPYC with AVX2."""
SPARSE_SMALL_WORK = 1 << 16
"""Products below which the sparse backwards are taken at any density (well under a
millisecond on a 2-core AMD EPYC with AVX2)."""
SPARSE_POOL_WORK_LIMIT = {"pixel": 1 << 25, "slice": 1 << 22, "energy": 1 << 22}
"""Most products (Σ over the entries of input channels × their scale's kernel size²) the
sparse backward of the pooled SiConv2d takes on, per pooling mode: near the break-even
with the frequency-domain backward of the paper's second layer, at about 30 ns per product
on one core of a 2-core AMD EPYC with AVX2."""

# ---------------------------------------------------------------- the switches

_OVERRIDES: dict[str, str] = {}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown fast-path kind {kind!r}; expected one of {KINDS}")
    return kind


def _check_mode(value: str, what: str) -> str:
    if value not in MODES:
        raise ValueError(f"unknown fast-path mode {value!r} for {what}; expected one of {MODES}")
    return value


def env_variable(kind: str) -> str:
    """The environment variable of switch ``kind``: ``SCALECNN_FASTPATH_<KIND>``."""
    return ENV_PREFIX + _check_kind(kind).upper()


@functools.lru_cache(maxsize=64)
def _parse_env(kind: str, raw: str | None) -> str:
    """The mode an environment value gives (unset or empty: ``auto``); cached per value."""
    value = (raw or "auto").strip().lower() or "auto"
    return _check_mode(value, env_variable(kind))


def mode(kind: str) -> str:
    """The mode of switch ``kind`` now: set by :func:`set_fastpath`/:func:`fastpath`, else
    by its environment variable, else ``auto``."""
    override = _OVERRIDES.get(_check_kind(kind))
    if override is not None:
        return override
    return _parse_env(kind, os.environ.get(ENV_PREFIX + kind.upper()))


def modes() -> dict[str, str]:
    """The mode of every switch now, e.g. to record with a run."""
    return {kind: mode(kind) for kind in KINDS}


def set_fastpath(kind: str, value: str | None) -> None:
    """Set switch ``kind`` to ``value`` (one of :data:`MODES`) for the whole process;
    ``None`` removes the setting, so that the environment variable decides again."""
    _check_kind(kind)
    if value is None:
        _OVERRIDES.pop(kind, None)
    else:
        _OVERRIDES[kind] = _check_mode(value, kind)


@contextlib.contextmanager
def fastpath(**kinds: str | None) -> Iterator[None]:
    """Set switches inside a ``with`` block, e.g. ``with fastpath(nnpack="off"):``;
    their previous settings come back on exit, also after an exception. Every kind and
    value is checked before any switch changes."""
    for kind, value in kinds.items():
        _check_kind(kind)
        if value is not None:
            _check_mode(value, kind)
    saved = {kind: _OVERRIDES.get(kind) for kind in kinds}
    try:
        for kind, value in kinds.items():
            set_fastpath(kind, value)
        yield
    finally:
        for kind, value in saved.items():
            set_fastpath(kind, value)


def check_conv_method(method: str, owner: str = "method") -> str:
    """``method`` if it is one of :data:`CONV_METHODS`; a ``ValueError`` otherwise."""
    if method not in CONV_METHODS:
        raise ValueError(f"{owner} must be one of {CONV_METHODS}, got {method!r}")
    return method
