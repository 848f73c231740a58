"""Loader for STIR files (their format: :mod:`scalecnn.data.stir_format`).

:class:`STIRDataset` keeps the API of the published loader. Each array is
decompressed lazily, at most once per dataset object, and only when needed
(asking for latents never touches ``imgs``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalecnn.data.stir_format import SPLITS, check_labels, load_array, read_layout, to_str_array
from scalecnn.study import MAX_SIZE, MIN_SIZE


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    return SPLITS.index(split)


def _scale_indices(scales: Iterable[int]) -> list[int]:
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Iterable):
        raise ValueError(
            f"scales must be a sequence of object sizes in {MIN_SIZE}..{MAX_SIZE}, got {scales!r}"
        )
    indices = []
    for s in scales:
        if (
            isinstance(s, bool)
            or not isinstance(s, (int, np.integer))
            or not (MIN_SIZE <= int(s) <= MAX_SIZE)
        ):
            raise ValueError(
                f"invalid scale {s!r}; every scale must be an integer object size in "
                f"{MIN_SIZE}..{MAX_SIZE}"
            )
        indices.append(MAX_SIZE - int(s))
    return indices


def _shuffled(arr: np.ndarray) -> np.ndarray:
    """Permute ``arr`` along axis 0 with a fresh ``RandomState(42)`` (in place)."""
    np.random.RandomState(42).shuffle(arr)
    return arr


class STIRDataset:
    """One STIR file, with the API of the published loader.

    ``STIRDataset(path)`` reads only the ``.npy`` headers to check keys, dtypes
    and shapes; each array is decompressed on first use and cached for the
    object's lifetime (``lbls`` is range-checked when first loaded).

    Attributes: ``metadata`` (dict title, description, author, license,
    version, date), ``labeldata`` (``(n,)`` str array of class names),
    ``num_classes`` (n), ``num_instances`` (m), ``num_channels`` (1 or 3).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"STIR file not found: {self.path}")
        self._info = read_layout(self.path)

    def __repr__(self) -> str:
        return (
            f"STIRDataset({str(self.path)!r}, classes={self.num_classes}, "
            f"instances={self.num_instances}, channels={self.num_channels})"
        )

    # -- layout -----------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes n."""
        return self._info.classes

    @property
    def num_instances(self) -> int:
        """Number of object instances m per class."""
        return self._info.instances

    @property
    def num_channels(self) -> int:
        """1 for gray files, 3 for colour files."""
        return self._info.channels

    # -- lazily decompressed arrays (each at most once) ---------------------
    @functools.cached_property
    def _imgs(self) -> np.ndarray:
        return load_array(self.path, "imgs")

    @functools.cached_property
    def _lbls(self) -> np.ndarray:
        lbls = load_array(self.path, "lbls")
        check_labels(self.path, lbls, self.num_classes)
        return lbls

    @functools.cached_property
    def _scls(self) -> np.ndarray:
        return load_array(self.path, "scls")

    @functools.cached_property
    def _psts(self) -> np.ndarray:
        return load_array(self.path, "psts")

    @functools.cached_property
    def metadata(self) -> dict[str, str]:
        """The ``(6, 2)`` metadata array as a dict (column 0 keys, column 1 values)."""
        arr = to_str_array(load_array(self.path, "metadata"))
        return {str(k): str(v) for k, v in arr}

    @functools.cached_property
    def labeldata(self) -> np.ndarray:
        """Class names, ``(n,)`` str array in label order."""
        return to_str_array(load_array(self.path, "lbldata"))

    # -- selections -------------------------------------------------------
    @staticmethod
    def _select(arr: np.ndarray, split_index: int, indices: list[int]) -> np.ndarray:
        # (len(scales), n, m, ...) -> (N, ...): scales in the given order, then class,
        # then instance. Fancy indexing copies, so shuffling never alters the cache.
        sel = arr[split_index][indices]
        return sel.reshape(-1, *arr.shape[4:])

    def to_numpy(
        self, split: str, scales: Sequence[int], shuffle: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of ``split`` at object sizes ``scales``.

        Returns ``images`` float32 ``(N, C, 64, 64)`` in [0, 1] and ``labels``
        int64 ``(N,)`` with ``N = len(scales) * n * m``. Order before
        shuffling: scales as given, then class, then instance. With
        ``shuffle`` each array is permuted by its own
        ``numpy.random.RandomState(42).shuffle``, so the arrays stay aligned
        (also with :meth:`get_latents`) and the order is the same every call.
        """
        split_index, indices = _check_split(split), _scale_indices(scales)
        raw = self._select(self._imgs, split_index, indices)  # uint8 (N, 64, 64[, 3])
        # gray (N, 64, 64) -> (N, 1, 64, 64); colour (N, 64, 64, 3) -> (N, 3, 64, 64);
        # converted into one contiguous float32 array (no second float copy).
        view = raw[:, None] if raw.ndim == 3 else raw.transpose(0, 3, 1, 2)
        images = np.empty(view.shape, dtype=np.float32)
        images[...] = view
        images /= np.float32(255.0)
        labels = self._select(self._lbls, split_index, indices).astype(np.int64)
        if shuffle:
            _shuffled(images)
            _shuffled(labels)
        return images, labels

    def to_torch(self, split: str, scales: Sequence[int], shuffle: bool = True) -> Any:
        """The arrays of :meth:`to_numpy` as a ``torch.utils.data.TensorDataset``.

        Tensors: images float32 ``(N, C, 64, 64)``, labels int64 ``(N,)``.
        """
        import torch
        from torch.utils.data import TensorDataset

        images, labels = self.to_numpy(split, scales, shuffle=shuffle)
        return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))

    def get_labels(self, split: str, scales: Sequence[int], shuffle: bool = True) -> np.ndarray:
        """Labels int64 ``(N,)`` in the order of :meth:`to_numpy`; ``imgs`` is not read."""
        split_index, indices = _check_split(split), _scale_indices(scales)
        labels = self._select(self._lbls, split_index, indices).astype(np.int64)
        if shuffle:
            _shuffled(labels)
        return labels

    def get_latents(
        self, split: str, scales: Sequence[int], shuffle: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Object sizes int64 ``(N,)`` and positions int64 ``(N, 2)`` (left, top).

        Same order (and shuffle) as :meth:`to_numpy`; ``imgs`` is not read.
        """
        split_index, indices = _check_split(split), _scale_indices(scales)
        sizes = self._select(self._scls, split_index, indices).astype(np.int64)
        positions = self._select(self._psts, split_index, indices).astype(np.int64)
        if shuffle:
            _shuffled(sizes)
            _shuffled(positions)
        return sizes, positions
