"""The STIR file format: reading and checking its headers, writing a file.

A STIR file (Scaled and Translated Image Recognition) is a compressed ``.npz``
archive with the keys

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
index ``i`` holds objects of size ``64 - i`` pixels. The published files and their
layouts are :data:`scalecnn.study.DATASETS`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scalecnn.atomic import atomic_path
from scalecnn.study import ALL_SIZES, IMAGE_SIZE, DatasetLayout

SPLITS: tuple[str, ...] = ("train", "valid", "test")
NUM_SCALES = len(ALL_SIZES)  # 48
KEYS: tuple[str, ...] = ("imgs", "lbls", "scls", "psts", "metadata", "lbldata")
METADATA_FIELDS: tuple[str, ...] = ("title", "description", "author", "license", "version", "date")

STIRInfo = DatasetLayout
"""Layout of a STIR file, read from the array headers: ``classes`` n, ``instances`` m,
``channels`` 1 (gray) or 3 (colour)."""


class STIRFormatError(ValueError):
    """A file is not a valid STIR ``.npz`` archive; the message names the file."""


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


def read_layout(path: Path) -> STIRInfo:
    """The layout of the STIR file ``path`` from its array headers (keys, dtypes and shapes
    checked; only the first bytes of each member are decompressed)."""
    return _check_layout(path, _read_headers(path))


def _stream_member(path: Path, key: str) -> None:
    """Decompress one member to its end without keeping it (checks its CRC)."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        while fh.read(1 << 22):
            pass


def load_array(path: Path, key: str) -> np.ndarray:
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


def check_labels(path: Path, lbls: np.ndarray, num_classes: int) -> None:
    """Raise :class:`STIRFormatError` unless every label is a class of the file."""
    if lbls.size and (lbls.min() < 0 or lbls.max() >= num_classes):
        raise STIRFormatError(
            f"{path}: labels and images disagree: lbls holds values "
            f"{int(lbls.min())}..{int(lbls.max())} but imgs has {num_classes} classes "
            f"(expected 0..{num_classes - 1})"
        )


def to_str_array(arr: np.ndarray) -> np.ndarray:
    """A string array as numpy unicode (byte strings decoded as UTF-8)."""
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
    info = read_layout(path)
    check_labels(path, load_array(path, "lbls"), info.classes)
    if deep:
        for key in KEYS:
            try:
                _stream_member(path, key)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise STIRFormatError(f"{path}: array {key!r} is corrupt: {exc}") from exc
    return info


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
