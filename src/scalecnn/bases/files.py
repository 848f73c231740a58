"""Basis files: a basis tensor written atomically as ``.pt`` or ``.npy``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from scalecnn.atomic import atomic_path, write_npy

__all__ = ["save_basis"]


def save_basis(path: str | os.PathLike, basis: torch.Tensor) -> Path:
    """Write a basis (e.g. ``(F, S, K, K)``) atomically as a plain float32 tensor.

    ``.pt`` files hold ``torch.save`` of the tensor (loadable with
    ``torch.load(..., weights_only=True)``; byte-identical for identical
    tensors), ``.npy`` files the array; both load with
    :func:`scalecnn.models.steerable.load_basis`.
    """
    path = Path(path)
    tensor = basis.detach().to("cpu", torch.float32).contiguous().clone()
    if path.suffix == ".npy":
        write_npy(path, tensor.numpy())
        return path
    if path.suffix != ".pt":
        raise ValueError(f"basis files are .pt or .npy, got {path}")
    # serialise to memory: a file target would name the archive after the temporary file
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path
