"""Loader for STIR files (Scaled and Translated Image Recognition).

A STIR file is a compressed ``.npz`` archive with the keys

========== ======================================================== =========
key        shape                                                    dtype
========== ======================================================== =========
``imgs``   gray ``(3, 48, n, m, 64, 64)``, colour ``(..., 64, 64, 3)``  uint8
``lbls``   ``(3, 48, n, m)``                                          integer
``scls``   ``(3, 48, n, m)``                                          integer
``psts``   ``(3, 48, n, m, 2)``  (distance to left, to top edge)      integer
``metadata`` ``(6, 2)`` rows title, description, author, license,   str
           version, date (column 0 the key, column 1 the value)
``lbldata`` ``(n,)`` class names                                      str
========== ======================================================== =========

with axes split (train, valid, test) × scale index × class × instance. Scale
index ``i`` holds objects of size ``64 - i`` pixels.

:class:`STIRDataset` keeps the API of the published loader. Each array is
decompressed lazily, at most once per dataset object, and only when needed
(asking for latents never touches ``imgs``).
"""

from __future__ import annotations

import functools
import os
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scalecnn.atomic import atomic_path

SPLITS: tuple[str, ...] = ("train", "valid", "test")
MIN_SIZE = 17
MAX_SIZE = 64
NUM_SCALES = MAX_SIZE - MIN_SIZE + 1  # 48
IMAGE_SIZE = 64
KEYS: tuple[str, ...] = ("imgs", "lbls", "scls", "psts", "metadata", "lbldata")
METADATA_FIELDS: tuple[str, ...] = ("title", "description", "author", "license", "version", "date")


class STIRFormatError(ValueError):
    """A file is not a valid STIR ``.npz`` archive; the message names the file."""


class STIRInfo(NamedTuple):
    """Layout of a STIR file, read from the array headers.

    ``classes`` n, ``instances`` m, ``channels`` 1 (gray) or 3 (colour).
    """

    classes: int
    instances: int
    channels: int


#: The four published STIR files: name -> (classes n, instances m, channels).
DATASETS: dict[str, STIRInfo] = {
    "emoji": STIRInfo(classes=36, instances=1, channels=1),
    "mnist": STIRInfo(classes=10, instances=50, channels=1),
    "trafficsign": STIRInfo(classes=16, instances=25, channels=3),
    "aerial": STIRInfo(classes=9, instances=25, channels=3),
}


class _Header(NamedTuple):
    shape: tuple[int, ...]
    dtype: np.dtype


def _read_headers(path: Path) -> dict[str, _Header]:
    """Shapes and dtypes of every ``.npy`` member, reading only the headers.

    Only the first bytes of each member are decompressed. Raises
    :class:`STIRFormatError` for anything that is not a readable ``.npz``.
    """
    headers: dict[str, _Header] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:  # pragma: no cover - numpy writes 1.0/2.0 (3.0 only for odd names)
                        raise ValueError(f"unsupported .npy format version {version}")
                headers[name[: -len(".npy")]] = _Header(tuple(shape), np.dtype(dtype))
    except (FileNotFoundError, PermissionError):
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
        raise STIRFormatError(
            f"{path}: not a readable STIR .npz archive (corrupt, truncated or another "
            f"format): {exc}"
        ) from exc
    return headers


def _check_layout(path: Path, headers: dict[str, _Header]) -> STIRInfo:
    """Check keys, dtypes and mutually consistent shapes; return the layout."""
    missing = [k for k in KEYS if k not in headers]
    if missing:
        raise STIRFormatError(
            f"{path}: missing key(s) {missing}; a STIR file holds {list(KEYS)}, "
            f"this one holds {sorted(headers)}"
        )

    def fail(msg: str) -> STIRFormatError:
        return STIRFormatError(f"{path}: {msg}")

    imgs = headers["imgs"]
    if imgs.dtype != np.uint8:
        raise fail(f"imgs must be uint8, got {imgs.dtype}")
    if len(imgs.shape) == 6:
        channels = 1
    elif len(imgs.shape) == 7 and imgs.shape[-1] == 3:
        channels = 3
    else:
        raise fail(
            f"imgs has shape {imgs.shape}; expected (3, 48, n, m, 64, 64) for gray or "
            "(3, 48, n, m, 64, 64, 3) for colour images"
        )
    if imgs.shape[:2] != (len(SPLITS), NUM_SCALES):
        raise fail(
            f"imgs has shape {imgs.shape}; the first two axes must be "
            f"(3 splits, {NUM_SCALES} scales)"
        )
    if imgs.shape[4:6] != (IMAGE_SIZE, IMAGE_SIZE):
        raise fail(f"imgs has shape {imgs.shape}; images must be {IMAGE_SIZE}x{IMAGE_SIZE}")
    lead = imgs.shape[:4]
    n, m = lead[2], lead[3]
    if n < 1 or m < 1:
        raise fail(f"imgs has shape {imgs.shape}; no classes or no instances")

    for key, expected in (("lbls", lead), ("scls", lead), ("psts", (*lead, 2))):
        hdr = headers[key]
        if hdr.shape != expected:
            raise fail(
                f"{key} has shape {hdr.shape} but imgs {imgs.shape} requires {expected} "
                "(arrays disagree)"
            )
        if hdr.dtype.kind not in "iu":
            raise fail(f"{key} must be an integer array, got {hdr.dtype}")
    if headers["metadata"].shape != (len(METADATA_FIELDS), 2):
        raise fail(f"metadata has shape {headers['metadata'].shape}; expected (6, 2)")
    if headers["lbldata"].shape != (n,):
        raise fail(
            f"lbldata has shape {headers['lbldata'].shape} but imgs has {n} classes; "
            f"expected ({n},)"
        )
    for key in ("metadata", "lbldata"):
        if headers[key].dtype.kind not in "US":
            raise fail(
                f"{key} must be a string array (numpy unicode, loadable without pickle), "
                f"got {headers[key].dtype}"
            )
    return STIRInfo(classes=n, instances=m, channels=channels)


def _stream_member(path: Path, key: str) -> None:
    """Decompress one member to its end without keeping it (checks its CRC)."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        while fh.read(1 << 22):
            pass


def _load_array(path: Path, key: str) -> np.ndarray:
    """Decompress one array of the archive (``np.load`` without pickle)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive[key]
    except (FileNotFoundError, PermissionError):
        raise
    except KeyError as exc:
        raise STIRFormatError(f"{path}: missing key {key!r}") from exc
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
        raise STIRFormatError(f"{path}: cannot read array {key!r} (corrupt file?): {exc}") from exc


def _check_labels(path: Path, lbls: np.ndarray, num_classes: int) -> None:
    if lbls.size and (lbls.min() < 0 or lbls.max() >= num_classes):
        raise STIRFormatError(
            f"{path}: labels and images disagree: lbls holds values "
            f"{int(lbls.min())}..{int(lbls.max())} but imgs has {num_classes} classes "
            f"(expected 0..{num_classes - 1})"
        )


def _to_str_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    return arr


def validate_stir_file(path: str | os.PathLike, deep: bool = False) -> STIRInfo:
    """Check that ``path`` is a well-formed STIR file and return its layout.

    Checks the keys, dtypes and shapes from the ``.npy`` headers (decompressing
    only the first bytes of ``imgs``), the class-name count and the label range.
    With ``deep=True`` every member, ``imgs`` included, is also decompressed
    once as a stream (checking the zip CRCs) without being kept in memory.

    Raises ``FileNotFoundError`` if the file is missing and
    :class:`STIRFormatError` (a ``ValueError``) naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STIR file not found: {path}")
    info = _check_layout(path, _read_headers(path))
    _check_labels(path, _load_array(path, "lbls"), info.classes)
    if deep:
        for key in KEYS:
            try:
                _stream_member(path, key)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise STIRFormatError(f"{path}: array {key!r} is corrupt: {exc}") from exc
    return info


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
        self._info = _check_layout(self.path, _read_headers(self.path))

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
        return _load_array(self.path, "imgs")

    @functools.cached_property
    def _lbls(self) -> np.ndarray:
        lbls = _load_array(self.path, "lbls")
        _check_labels(self.path, lbls, self.num_classes)
        return lbls

    @functools.cached_property
    def _scls(self) -> np.ndarray:
        return _load_array(self.path, "scls")

    @functools.cached_property
    def _psts(self) -> np.ndarray:
        return _load_array(self.path, "psts")

    @functools.cached_property
    def metadata(self) -> dict[str, str]:
        """The ``(6, 2)`` metadata array as a dict (column 0 keys, column 1 values)."""
        arr = _to_str_array(_load_array(self.path, "metadata"))
        return {str(k): str(v) for k, v in arr}

    @functools.cached_property
    def labeldata(self) -> np.ndarray:
        """Class names, ``(n,)`` str array in label order."""
        return _to_str_array(_load_array(self.path, "lbldata"))

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


def write_stir_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed ``.npz`` atomically and byte-reproducibly.

    Like ``np.savez_compressed`` but every zip entry gets a fixed timestamp
    (1980-01-01), so the same arrays always give the same bytes. The result is
    checked with :func:`validate_stir_file` before it replaces ``path``.
    """
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
        validate_stir_file(tmp)
