"""The three metrics of a trained run (``docs/metrics.md``).

All use the test split of the run's dataset and the run's best weights, in
eval mode, without gradients, in batches of :data:`scalecnn.study.EVAL_BATCH_SIZE`
(results do not depend on it), unshuffled order.

- :func:`scale_generalization`: accuracy per object size 17..64.
- :func:`equivariance_errors`: ‖ref − resized‖² / ‖ref‖² of cropped stage-1/2
  feature maps for six size pairs, per class and instance.
- :func:`scale_indices`: the scale indices chosen by the two ScalePool layers.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from scalecnn import atomic
from scalecnn.aggregate import best_run
from scalecnn.device import resolve_device
from scalecnn.study import (
    ALL_SIZES,
    EQUIVARIANCE_PAIRS,
    EQUIVARIANCE_SIZES,
    EVAL_BATCH_SIZE,
    INPUT_SCALES,
)

log = logging.getLogger(__name__)


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's ``metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json in run directory {run_dir}")
    return json.loads(path.read_text())


def load_run_model(
    run_dir: str | os.PathLike,
    num_channels: int,
    num_classes: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Rebuild a run's model from its parameters and load its best weights (``weights_only``)."""
    from scalecnn.models import build_model, get_spec, load_plugins

    params = load_run(run_dir)["params"]
    load_plugins(params.get("plugins") or [])
    extra = {"basis": params["basis"]} if get_spec(params["model"]).needs_basis else {}
    model = build_model(
        params["model"],
        kernel_size=params["kernel_size"],
        interpolation=params["interpolation"],
        num_channels=num_channels,
        num_classes=num_classes,
        **extra,
    )
    state = torch.load(Path(run_dir) / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()


def _batches(images: np.ndarray, device: torch.device, scale: float = 1.0):
    for start in range(0, len(images), EVAL_BATCH_SIZE):
        yield (
            torch.from_numpy(np.ascontiguousarray(images[start : start + EVAL_BATCH_SIZE])).to(
                device
            )
            * scale
        )


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Predicted classes ``(N,)`` for images ``(N, C, 64, 64)`` in evaluation batches."""
    model.eval()
    preds = [model(x).argmax(dim=1).cpu() for x in _batches(images, device)]
    return torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)


def scale_generalization(
    model: nn.Module,
    dataset: Any,
    device: torch.device,
    known: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Accuracy (fraction in [0, 1]) per object size 17..64 on the test split: ``(48,)``.

    ``known`` maps sizes to per-image correctness already at hand (e.g. from
    :func:`known_test_correctness`); only the other sizes are predicted.
    """
    known = dict(known or {})
    missing = [s for s in ALL_SIZES if s not in known]
    if missing:
        images, labels = dataset.to_numpy("test", missing, shuffle=False)
        sizes, _ = dataset.get_latents("test", missing, shuffle=False)
        correct = predict(model, images, device) == np.asarray(labels)
        sizes = np.asarray(sizes)
        known.update({s: correct[sizes == s] for s in missing})
    return np.array([known[s].mean() for s in ALL_SIZES])


def known_test_correctness(run_dir: str | os.PathLike, dataset: Any) -> dict[int, np.ndarray]:
    """Per-size correctness of the run's own test predictions (``predictions.npy``).

    Training predicts its scenario's test split with the best state, the same
    weights as ``model.pt``, in the loader's (shuffled, fixed) order, so
    :meth:`STIRDataset.get_latents` gives each prediction's size. Returns ``{}``
    when the file is missing or does not fit (no best state: ``-1`` entries).
    """
    from scalecnn.data import get_scenario

    path = Path(run_dir) / "predictions.npy"
    if not path.exists():
        return {}
    pred = np.load(path, allow_pickle=False)
    test_sizes = list(get_scenario(int(load_run(run_dir)["params"]["evaluation"])).test_sizes)
    labels = dataset.get_labels("test", test_sizes, shuffle=True)
    sizes, _ = dataset.get_latents("test", test_sizes, shuffle=True)
    if pred.shape != labels.shape or (pred < 0).any():
        return {}
    correct = pred == labels
    return {s: correct[sizes == s] for s in test_sizes}


def crop_to_object(fmap: torch.Tensor, position: tuple[int, int], size: int) -> torch.Tensor:
    """Crop a map ``(C, h, w)`` of a 64×64 image to its object.

    With ``p = 64 − h``: rows ``y : y + size − p``, columns ``x : x + size − p``,
    where ``(x, y)`` is the object's position (left, top).
    """
    p = 64 - fmap.shape[-1]
    x, y = int(position[0]), int(position[1])
    return fmap[:, y : y + size - p, x : x + size - p]


def relative_error(ref: torch.Tensor, other: torch.Tensor) -> float:
    """``‖ref − resize(other)‖² / ‖ref‖²`` with bicubic resizing of ``other`` to ``ref``'s size.

    NaN where ``ref`` is all zero (e.g. every unit of a stage dead after the ReLU on that
    object): the relative error is undefined there, not infinite.
    """
    resized = F.interpolate(other[None].double(), size=tuple(ref.shape[-2:]), mode="bicubic")[0]
    ref = ref.double()
    norm = (ref**2).sum()
    if norm == 0:
        return float("nan")
    return float(((ref - resized) ** 2).sum() / norm)


@torch.no_grad()
def equivariance_errors(
    model: nn.Module,
    dataset: Any,
    device: torch.device,
    input_scale: str = "unit",
    groups_per_chunk: int = 32,
) -> dict[str, np.ndarray]:
    """Stage-1 and stage-2 equivariance errors ``(classes, instances, 6)`` for the six pairs.

    The model must provide ``feature_maps(x) -> (stage1, stage2)``.
    """
    if not hasattr(model, "feature_maps"):
        raise ValueError(
            f"{type(model).__name__} does not expose feature_maps(); "
            "the equivariance error needs stage-1/stage-2 traces"
        )
    scale = INPUT_SCALES[input_scale]
    sizes = list(EQUIVARIANCE_SIZES)
    images, _ = dataset.to_numpy("test", sizes, shuffle=False)
    _, positions = dataset.get_latents("test", sizes, shuffle=False)
    n_cls, n_inst = dataset.num_classes, len(images) // (len(sizes) * dataset.num_classes)
    groups = n_cls * n_inst
    # loader order: size, then class, then instance → (6, groups, ...)
    images = images.reshape(len(sizes), groups, *images.shape[1:])
    positions = np.asarray(positions).reshape(len(sizes), groups, 2)
    errors = {"stage1": np.zeros((groups, 6)), "stage2": np.zeros((groups, 6))}
    index = {s: i for i, s in enumerate(sizes)}
    for g0 in range(0, groups, groups_per_chunk):
        g1 = min(groups, g0 + groups_per_chunk)
        chunk = images[:, g0:g1].reshape(-1, *images.shape[2:])  # (6·g, C, 64, 64)
        maps = [model.feature_maps(x) for x in _batches(chunk, device, scale)]
        for stage_i, stage in enumerate(("stage1", "stage2")):
            fmaps = torch.cat([m[stage_i] for m in maps]).reshape(
                len(sizes), g1 - g0, *maps[0][stage_i].shape[1:]
            )
            for g in range(g1 - g0):
                crops = {
                    s: crop_to_object(fmaps[index[s], g], positions[index[s], g0 + g], s)
                    for s in sizes
                }
                for p, (a, b) in enumerate(EQUIVARIANCE_PAIRS):
                    errors[stage][g0 + g, p] = relative_error(crops[a], crops[b])
    return {k: v.reshape(n_cls, n_inst, 6) for k, v in errors.items()}


@torch.no_grad()
def scale_indices(model: nn.Module, dataset: Any, device: torch.device) -> dict[str, np.ndarray]:
    """Scale indices chosen by ``pool1``/``pool2`` for every test image (sizes 17..64).

    Returns ``pool1``, ``pool2`` (uint8; pixel ``(N, C, H, W)``, slice/energy ``(N, C)``),
    ``sizes (N,)`` and ``labels (N,)``.
    """
    for name in ("pool1", "pool2"):
        if not hasattr(model, name):
            raise ValueError(
                f"{type(model).__name__} has no {name}; scale indices need "
                "a model with ScalePool layers (pixel_pool, slice_pool, energy_pool)"
            )
    images, labels = dataset.to_numpy("test", list(ALL_SIZES), shuffle=False)
    sizes, _ = dataset.get_latents("test", list(ALL_SIZES), shuffle=False)
    pool1, pool2 = [], []
    for x in _batches(images, device):
        model(x)
        pool1.append(model.pool1.indices.to(torch.uint8).cpu())
        pool2.append(model.pool2.indices.to(torch.uint8).cpu())
    return {
        "pool1": torch.cat(pool1).numpy(),
        "pool2": torch.cat(pool2).numpy(),
        "sizes": np.asarray(sizes),
        "labels": np.asarray(labels),
    }


# ---------------------------------------------------------------------------------------------
# writers used by the CLI and the workflow scripts


def _open(run_dir: str | os.PathLike, data: str | os.PathLike, device: str):
    from scalecnn.data import STIRDataset

    dataset = STIRDataset(data)
    dev = resolve_device(device)
    model = load_run_model(run_dir, dataset.num_channels, dataset.num_classes, dev)
    return load_run(run_dir)["params"], dataset, model, dev


def write_generalization(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    device: str = "auto",
) -> pd.DataFrame:
    """Write one row ``model, data, eval, lr, seed, s17 … s64`` (fractions) to ``out``.

    Sizes in the run's own test split come from its ``predictions.npy`` (all of
    them for All2All); only the others are predicted here.
    """
    params, dataset, model, dev = _open(run_dir, data, device)
    # sizes of the run's own test split need no second pass: its predictions are saved
    known = known_test_correctness(run_dir, dataset)
    log.info(
        "%s: %d of %d sizes from the run's test predictions", run_dir, len(known), len(ALL_SIZES)
    )
    acc = scale_generalization(model, dataset, dev, known)
    row = {
        "model": params["model"],
        "data": params["data_name"],
        "eval": params["evaluation"],
        "lr": params["lr"],
        "seed": params["seed"],
    }
    row.update({f"s{s}": a for s, a in zip(ALL_SIZES, acc)})
    frame = pd.DataFrame([row])
    atomic.write_csv(out, frame)
    return frame


def write_equivariance(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    device: str = "auto",
    input_scale: str = "unit",
) -> dict[str, np.ndarray]:
    """Write ``stage1``, ``stage2`` ``(classes, instances, 6)`` and ``pairs`` to ``out`` (npz)."""
    _, dataset, model, dev = _open(run_dir, data, device)
    errors = equivariance_errors(model, dataset, dev, input_scale)
    atomic.write_npz(
        out, pairs=np.array(EQUIVARIANCE_PAIRS), input_scale=np.array(input_scale), **errors
    )
    return errors


def write_indices(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    device: str = "auto",
    **extra: np.ndarray,
) -> dict[str, np.ndarray]:
    """Write the pooling indices of every test image (and ``extra`` arrays) to ``out`` (npz)."""
    params, dataset, model, dev = _open(run_dir, data, device)
    arrays = scale_indices(model, dataset, dev)
    atomic.write_npz(out, kernel_size=np.array(params["kernel_size"]), **extra, **arrays)
    return arrays


METRICS = {
    "generalization": write_generalization,
    "equivariance": write_equivariance,
    "indices": write_indices,
}


def write_best_run_indices(
    metrics_files: list[str | os.PathLike],
    data: str | os.PathLike,
    out: str | os.PathLike,
    device: str = "auto",
) -> Path:
    """Pooling indices of the best run (by test accuracy) written to ``out``; returns the run."""
    run = best_run(metrics_files)
    log.info("best run by test accuracy: %s", run)
    write_indices(run, data, out, device, run=np.array(str(run)))
    return run
