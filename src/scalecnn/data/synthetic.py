"""Tiny, format-correct STIR files for tests.

Each class is a distinct simple shape (filled square, ring, plus, ...) drawn
so that it fills its recorded ``size × size`` box at its recorded position,
which makes the data learnable by a small CNN in a few epochs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scalecnn.data.stir_format import NUM_SCALES, SPLITS, write_stir_npz
from scalecnn.study import IMAGE_SIZE, MAX_SIZE

# Shape masks on normalised pixel-centre coordinates u (x, left→right) and
# v (y, top→bottom) in (0, 1); ``t`` is a relative stroke width. Every shape
# touches all four sides of its box, so its bounding box is the object size.
_ShapeFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _square(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.ones_like(u, dtype=bool)


def _ring(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    r = np.hypot(u - 0.5, v - 0.5)
    return (r <= 0.5) & (r >= 0.5 - t)


def _plus(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return (np.abs(u - 0.5) <= t / 2 + 0.05) | (np.abs(v - 0.5) <= t / 2 + 0.05)


def _cross(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return (np.abs(u - v) <= t / 1.5) | (np.abs(u + v - 1.0) <= t / 1.5)


def _triangle(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.abs(u - 0.5) <= v / 2 + 0.02


def _disc(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.hypot(u - 0.5, v - 0.5) <= 0.5


def _frame(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.maximum(np.abs(u - 0.5), np.abs(v - 0.5)) >= 0.5 - t


def _hstripes(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.floor(v * 5).astype(int) % 2 == 0


def _vstripes(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.floor(u * 5).astype(int) % 2 == 0


def _diamond(u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    return np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5


SHAPES: tuple[tuple[str, _ShapeFn], ...] = (
    ("square", _square),
    ("ring", _ring),
    ("plus", _plus),
    ("cross", _cross),
    ("triangle", _triangle),
    ("disc", _disc),
    ("frame", _frame),
    ("hstripes", _hstripes),
    ("vstripes", _vstripes),
    ("diamond", _diamond),
)


def _shape_mask(shape: int, instance: int, size: int) -> np.ndarray:
    """Boolean ``(size, size)`` mask of class shape ``shape`` for ``instance``."""
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, c)  # u varies along x (columns), v along y (rows)
    thickness = 0.18 + 0.05 * (instance % 3)
    mask = SHAPES[shape % len(SHAPES)][1](u, v, thickness)
    # Guarantee the bounding box is the full box even at the smallest sizes.
    if not mask[0].any():
        mask[0, size // 2] = True
    if not mask[-1].any():
        mask[-1, size // 2] = True
    if not mask[:, 0].any():
        mask[size // 2, 0] = True
    if not mask[:, -1].any():
        mask[size // 2, -1] = True
    return mask


def write_synthetic_stir(
    path: str | os.PathLike,
    num_classes: int = 3,
    num_instances: int = 2,
    channels: int = 1,
    seed: int = 0,
    learnable: bool = True,
) -> Path:
    """Write a small synthetic STIR file to ``path`` (atomically) and return the path.

    Arrays: ``imgs`` uint8 ``(3, 48, n, m, 64, 64)`` (``channels=1``) or
    ``(3, 48, n, m, 64, 64, 3)`` (``channels=3``); ``lbls``/``scls`` int64
    ``(3, 48, n, m)``; ``psts`` int64 ``(3, 48, n, m, 2)`` (left, top);
    ``metadata`` ``(6, 2)`` and ``lbldata`` ``(n,)`` unicode. Scale index ``i``
    holds size ``64 - i``; positions are uniform in ``[0, 64 - size]``.

    Class ``c`` is shape ``SHAPES[c % 10]`` (at a lower intensity for
    ``c >= 10``); instances differ in stroke width, intensity and (colour
    files) hue. With ``learnable=False`` each image shows the shape of a random
    class instead, so labels carry no information. Deterministic in ``seed``:
    the same arguments give a byte-identical file.
    """
    if num_classes < 1 or num_instances < 1:
        raise ValueError("num_classes and num_instances must be >= 1")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    rng = np.random.default_rng(seed)
    n, m = num_classes, num_instances
    lead = (len(SPLITS), NUM_SCALES, n, m)
    imgs = np.zeros((*lead, IMAGE_SIZE, IMAGE_SIZE, channels), dtype=np.uint8)
    lbls = np.broadcast_to(np.arange(n, dtype=np.int64)[None, None, :, None], lead).copy()
    sizes_per_index = MAX_SIZE - np.arange(NUM_SCALES, dtype=np.int64)
    scls = np.broadcast_to(sizes_per_index[None, :, None, None], lead).copy()
    psts = np.empty((*lead, 2), dtype=np.int64)
    psts[..., 0] = rng.integers(0, IMAGE_SIZE - scls + 1)
    psts[..., 1] = rng.integers(0, IMAGE_SIZE - scls + 1)
    # The shape drawn in each image: its class, or a random one if not learnable.
    shown = lbls if learnable else rng.integers(0, n, size=lead)
    # One colour per (class, instance); gray files use its brightness only.
    colours = rng.integers(96, 256, size=(n, m, channels))
    if channels == 1:
        colours[:] = 255
    intensity = np.array([1.0 - 0.1 * (i % 3) for i in range(m)])

    cache: dict[tuple[int, int, int], np.ndarray] = {}
    for idx in np.ndindex(*lead):
        _split, scale_index, _cls, inst = idx
        size = int(sizes_per_index[scale_index])
        shape = int(shown[idx])
        key = (shape, inst, size)
        if key not in cache:
            cache[key] = _shape_mask(shape, inst, size)
        x, y = psts[idx]
        level = intensity[inst] * (1.0 - 0.3 * (shape // len(SHAPES) % 3))
        value = np.round(colours[shape, inst] * level).astype(np.uint8)
        region = imgs[idx][y : y + size, x : x + size]
        region[cache[key]] = value
    if channels == 1:
        imgs = imgs[..., 0]

    names = [
        SHAPES[c % len(SHAPES)][0] + ("" if c < len(SHAPES) else f"-{c // len(SHAPES)}")
        for c in range(n)
    ]
    metadata = np.array(
        [
            ["title", "STIR synthetic"],
            [
                "description",
                f"Synthetic STIR test data: {n} shape classes, {m} instances, "
                f"{channels} channel(s), seed {seed}, learnable={learnable}",
            ],
            ["author", "scalecnn"],
            ["license", "CC0 1.0"],
            ["version", "1.0"],
            ["date", "2024-01-01"],
        ],
        dtype=str,
    )
    path = Path(path)
    write_stir_npz(
        path,
        {
            "imgs": imgs,
            "lbls": lbls,
            "scls": scls,
            "psts": psts,
            "metadata": metadata,
            "lbldata": np.array(names, dtype=str),
        },
    )
    return path
