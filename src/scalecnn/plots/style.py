"""One look for every figure: model order, names and colours, datasets, evaluations, fonts.

The names, their order and the evaluations are the study's (:mod:`scalecnn.study`); this
module adds how they look. The paper's eleven models come first, in the paper's order,
each with a fixed colour. A model registered by a user gets a colour derived from its name (a
hash, so it is the same in every figure and every process) and is placed after
the paper's models, alphabetically; it is never dropped from a figure.
"""

from __future__ import annotations

import colorsys
import contextlib
import hashlib
from collections.abc import Iterable, Iterator

import matplotlib as mpl

from scalecnn.study import DATASET_NAMES, EVALUATION_NAMES, STUDY_MODELS

MODEL_LABELS: dict[str, str] = {
    "standard": "Standard",
    "pixel_pool": "Pixel pool",
    "slice_pool": "Slice pool",
    "energy_pool": "Energy pool",
    "conv3d": "Conv3D",
    "ensemble": "Ensemble",
    "spatial_transform": "Spatial transformer",
    "xu": "Xu et al.",
    "kanazawa": "Kanazawa et al.",
    "hermite": "SESN (Hermite)",
    "disco": "DISCO",
    "gaussder": "GaussDerNet",
    "riesz": "Riesz network",
}

# Colour-blind-friendly where possible (Okabe-Ito first, then tab10 tones);
# the standard CNN is the neutral reference.
MODEL_COLORS: dict[str, str] = {
    "standard": "#444444",
    "pixel_pool": "#0072B2",
    "slice_pool": "#E69F00",
    "energy_pool": "#009E73",
    "conv3d": "#CC79A7",
    "ensemble": "#56B4E9",
    "spatial_transform": "#D55E00",
    "xu": "#8C564B",
    "kanazawa": "#9467BD",
    "hermite": "#BCBD22",
    "disco": "#17BECF",
    "gaussder": "#D62728",
    "riesz": "#66A61E",
}

DATASET_LABELS: dict[str, str] = {
    "emoji": "Emoji",
    "mnist": "MNIST",
    "trafficsign": "Traffic sign",
    "aerial": "Aerial",
}
DATASET_MARKERS: dict[str, str] = {"emoji": "o", "mnist": "s", "trafficsign": "^", "aerial": "D"}
DATASET_COLORS: dict[str, str] = {
    "emoji": "#0072B2",
    "mnist": "#D55E00",
    "trafficsign": "#009E73",
    "aerial": "#CC79A7",
}
_FALLBACK_MARKERS = ("v", "P", "X", "*", "h", "<", ">", "p")

FONT_FAMILY = "DejaVu Sans"

RC_PARAMS: dict[str, object] = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


# --------------------------------------------------------------------------- models
def fallback_color(name: str) -> str:
    """A deterministic colour for a model (or anything) not in the paper's palette.

    Derived from the MD5 of the name (not Python's salted ``hash``), so the same
    name gets the same colour in every figure and every process.
    """
    digest = hashlib.md5(str(name).encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    sat = 0.55 + 0.35 * digest[2] / 255.0
    val = 0.45 + 0.30 * digest[3] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def model_color(model: str) -> str:
    """Colour of ``model``: the paper's palette, else :func:`fallback_color`."""
    return MODEL_COLORS.get(model, fallback_color(model))


def model_label(model: str) -> str:
    """Display name of ``model`` (unknown models keep their registry name)."""
    return MODEL_LABELS.get(model, str(model))


def model_order(models: Iterable[str]) -> list[str]:
    """The distinct ``models`` in the study's order (the paper's eleven, then the new
    built-in ones), then unknown ones alphabetically."""
    present = {str(m) for m in models}
    known = [m for m in STUDY_MODELS if m in present]
    return known + sorted(present.difference(STUDY_MODELS))


def model_palette(models: Iterable[str]) -> dict[str, str]:
    """``{model: colour}`` for the given models (for seaborn's ``palette=``)."""
    return {m: model_color(m) for m in model_order(models)}


# --------------------------------------------------------------------------- datasets
def data_order(datasets: Iterable[str]) -> list[str]:
    """The distinct datasets in the paper's order, then unknown ones alphabetically."""
    present = {str(d) for d in datasets}
    known = [d for d in DATASET_NAMES if d in present]
    return known + sorted(present.difference(DATASET_NAMES))


def data_label(data: str) -> str:
    """Display name of a dataset."""
    return DATASET_LABELS.get(data, str(data))


def data_color(data: str) -> str:
    """Colour of a dataset (used where datasets, not models, are the series)."""
    return DATASET_COLORS.get(data, fallback_color("data:" + str(data)))


def data_marker(data: str) -> str:
    """Marker of a dataset; unknown datasets get a marker chosen from their name."""
    if data in DATASET_MARKERS:
        return DATASET_MARKERS[data]
    digest = hashlib.md5(str(data).encode("utf-8")).digest()
    return _FALLBACK_MARKERS[digest[0] % len(_FALLBACK_MARKERS)]


# --------------------------------------------------------------------------- evaluations
def eval_name(evaluation: int) -> str:
    """``'Mid2Rest'`` for 2, etc.; unknown ids give ``'eval<id>'``."""
    return EVALUATION_NAMES.get(int(evaluation), f"eval{evaluation}")


def eval_label(evaluation: int) -> str:
    """``'2 Mid2Rest'`` for 2 (the numbered name used in titles)."""
    return f"{int(evaluation)} {eval_name(evaluation)}"


def eval_order(evaluations: Iterable[int]) -> list[int]:
    """The distinct evaluation ids, sorted."""
    return sorted({int(e) for e in evaluations})


# --------------------------------------------------------------------------- fonts / rc
def apply_style() -> None:
    """Apply the figure style globally (``matplotlib.rcParams``).

    The plotting functions do not need this: they draw inside :func:`style_context`.
    """
    mpl.rcParams.update(RC_PARAMS)


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """Temporarily apply the figure style; used by every plotting function."""
    with mpl.rc_context(RC_PARAMS):
        yield
