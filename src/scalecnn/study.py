"""The facts of the paper's study, written once (plain Python: no numpy, no torch).

Everything else derives from these names: the STIR loader and the scenarios
(:mod:`scalecnn.data`), the figures' order and labels (:mod:`scalecnn.plots.style`),
the metrics (:mod:`scalecnn.evaluation`), the tables (:mod:`scalecnn.aggregate`) and the
run folders. ``tests/test_study.py`` checks that the workflow's config schema and
``config/quick.yaml`` agree with them. The protocol itself is described in
``docs/protocol.md``, the metrics in ``docs/metrics.md``, the models in ``docs/models.md``.
"""

from __future__ import annotations

from typing import NamedTuple

# --------------------------------------------------------------------------- models
PAPER_MODELS: tuple[str, ...] = (
    "standard",
    "pixel_pool",
    "slice_pool",
    "energy_pool",
    "conv3d",
    "ensemble",
    "spatial_transform",
    "xu",
    "kanazawa",
    "hermite",
    "disco",
)
"""The eleven models in the paper's order."""

NEW_MODELS: tuple[str, ...] = ("gaussder", "riesz")
"""Models 12 and 13, published after the paper (docs/new_models.md): the Gaussian
derivative network and the Riesz network. The paper has no results for them."""

STUDY_MODELS: tuple[str, ...] = PAPER_MODELS + NEW_MODELS
"""Every built-in model in the study's order: the paper's eleven, then the new ones."""

INTERPOLATION_MODES: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "area")
"""Kernel interpolation modes of the scale-invariant convolution (``bicubic`` the paper's)."""


# --------------------------------------------------------------------------- datasets
class DatasetLayout(NamedTuple):
    """Layout of a STIR file: ``classes`` n, ``instances`` m, ``channels`` 1 (gray) or 3."""

    classes: int
    instances: int
    channels: int


DATASETS: dict[str, DatasetLayout] = {
    "emoji": DatasetLayout(classes=36, instances=1, channels=1),
    "mnist": DatasetLayout(classes=10, instances=50, channels=1),
    "trafficsign": DatasetLayout(classes=16, instances=25, channels=3),
    "aerial": DatasetLayout(classes=9, instances=25, channels=3),
}
"""The four STIR files of Zenodo record 6578038, in the paper's order, with their layout."""

DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)
"""``emoji, mnist, trafficsign, aerial``."""

GENERATED_DATASETS: tuple[str, ...] = ("emoji",)
"""Datasets that can be regenerated offline (config ``source: generate``)."""

# --------------------------------------------------------------------------- object sizes
IMAGE_SIZE = 64
MIN_SIZE = 17
MAX_SIZE = 64
ALL_SIZES: tuple[int, ...] = tuple(range(MIN_SIZE, MAX_SIZE + 1))
"""Object sizes 17..64 in pixels (48 scales; STIR scale index ``i`` holds size ``64 − i``)."""

# --------------------------------------------------------------------------- evaluations
EVALUATION_NAMES: dict[int, str] = {
    1: "Small2Large",
    2: "Mid2Rest",
    3: "Large2Small",
    4: "All2All",
}
"""The four evaluation scenarios by id."""

EVALUATIONS: tuple[int, ...] = tuple(EVALUATION_NAMES)

TRAIN_SIZE_RANGES: dict[int, tuple[int, int]] = {1: (17, 32), 2: (33, 48), 3: (49, 64), 4: (17, 64)}
"""Inclusive object-size range of the training (and validation) images per evaluation; the
test images are the other sizes (every size for All2All, which trains on all of them)."""


def split_sizes(evaluation: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Object sizes ``(train, test)`` of ``evaluation``: training (and validation) images
    at :data:`TRAIN_SIZE_RANGES`, test images at the other sizes, or at every size when
    training covers them all (All2All)."""
    lo, hi = TRAIN_SIZE_RANGES[int(evaluation)]
    train = tuple(range(lo, hi + 1))
    rest = tuple(s for s in ALL_SIZES if not lo <= s <= hi)
    return train, rest or ALL_SIZES


# --------------------------------------------------------------------------- runs
def format_lr(lr: float) -> str:
    """Canonical text of a learning rate in run folders and tables: 0.01, 0.001, 1e-05."""
    return f"{float(lr):g}"


RUN_DIR = "runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}"
"""A run's folder under the results folder (``lr`` written by :func:`format_lr`)."""


def run_dir(data: str, model: str, evaluation: int, lr: float, seed: int) -> str:
    """The folder of one run relative to the results folder."""
    return RUN_DIR.format(
        data=data, model=model, evaluation=int(evaluation), lr=format_lr(lr), seed=int(seed)
    )


EVAL_BATCH_SIZE = 64
"""Batch size of every evaluation pass (no gradients): larger batches amortise the
SiConv2d fast path's per-batch kernel spectra (~10% faster per image than 16 on CPU)
and results do not depend on it (eval mode, no batch statistics)."""

# --------------------------------------------------------------------------- equivariance
EQUIVARIANCE_SIZES: tuple[int, ...] = (64, 49, 48, 33, 32, 17)
EQUIVARIANCE_PAIRS: tuple[tuple[int, int], ...] = (
    (64, 49),
    (49, 64),
    (48, 33),
    (33, 48),
    (32, 17),
    (17, 32),
)
"""Ordered pairs (reference ← resized) of the equivariance error."""

PAIR_SUBSETS: dict[int, tuple[int, ...]] = {
    1: (2, 3, 4, 5),
    2: (0, 1, 4, 5),
    3: (0, 1, 2, 3),
    4: (0, 1, 2, 3, 4, 5),
}
"""Indices into :data:`EQUIVARIANCE_PAIRS` that the paper's figures average per evaluation."""

INPUT_SCALES: dict[str, float] = {"unit": 1.0, "raw255": 255.0}
"""``unit``: images in [0, 1] as in training (default); ``raw255``: the paper's quirk."""

# --------------------------------------------------------------------------- DISCO basis
DISCO_SCALES: tuple[float, ...] = (1.0, 1.26, 1.59, 2.0)
"""The paper's DISCO scales (``disco_b`` of the STIR study)."""

DISCO_KERNEL_SIZE = 15
"""Size of the DISCO (and Hermite) basis kernels of the largest scale."""
DISCO_EFFECTIVE_SIZE = 7
"""Size of the basis at scale 1: ``7 * 7 = 49`` basis functions."""

PAPER_DISCO: dict[str, float | int] = {
    "epochs": 40,
    "steps_per_epoch": 157,
    "batch_size": 64,
    "image_size": 154,
    "lr": 1e-3,
    "init_std": 1.0,
}
"""The paper's DISCO basis optimisation (hours on a CPU; ``docs/disco_basis.md``)."""

QUICK_DISCO: dict[str, float | int] = {
    "epochs": 2,
    "steps_per_epoch": 20,
    "batch_size": 4,
    "image_size": 64,
    "lr": 0.01,
    "init_std": 0.01,
}
"""The cheap DISCO basis optimisation of the quick configuration (``config/quick.yaml``,
key ``disco``; see ``docs/disco_basis.md``)."""
