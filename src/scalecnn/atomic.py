"""Atomic file writing: every file the package writes goes through here.

A file is written under a unique temporary name in its target directory and
renamed onto the final path only once it is complete, so a killed process
never leaves a truncated file at a path that a later step could read.

A full disk (``ENOSPC``, or ``EDQUOT``: a quota) raises :class:`DiskFullError`, one
message naming the path, whatever the writer; the temporary file is removed and the
file at the final path is left as it was. Writers whose own errors hide the ``errno``
(``torch.save`` reports a short write as ``RuntimeError: ... unexpected pos``) write
into memory first, then onto the disk with a plain file write.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_EDQUOT = getattr(errno, "EDQUOT", None)  # quota exceeded (Linux, macOS; not Windows)
_FULL_DISK = frozenset(e for e in (errno.ENOSPC, _EDQUOT) if e is not None)


class DiskFullError(OSError):
    """A file could not be written for lack of space (or quota) on its device.

    Why: a writer's own error (``[Errno 28]`` without the path, or torch's ``unexpected
    pos 11520 vs 11408``) says neither what happened nor to which file; ``str()`` of this
    one is the whole story: what, where, that the final path was left as it was, and
    ``hint`` (what to do).
    """

    def __init__(
        self, path: str | os.PathLike, hint: str | None = None, code: int = errno.ENOSPC
    ) -> None:
        self.path = Path(path)
        self.hint = hint or "free some space there (or write elsewhere) and run it again"
        self.free = _free_bytes(self.path.parent)
        what = "disk quota exceeded" if code == _EDQUOT else "no space left"
        free = f" ({_size(self.free)} free)" if self.free is not None else ""
        self.message = (
            f"{what} on the device of {self.path}{free}: {self.path.name} was not written "
            f"(its previous version, if any, is intact); {self.hint}"
        )
        super().__init__(code, self.message, str(self.path))

    def with_hint(self, hint: str) -> DiskFullError:
        """The same error with another ``hint``, from a caller that knows what to do."""
        return DiskFullError(self.path, hint, self.errno)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:  # OSError's pickling would call __init__(errno, message)
        return (DiskFullError, (self.path, self.hint, self.errno))


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` reports a write that found no room (``ENOSPC``, ``EDQUOT``)."""
    return isinstance(exc, OSError) and exc.errno in _FULL_DISK


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the file's suffix (``suffix`` overrides it) so that
    writers which choose a format by extension (matplotlib, numpy) still work.
    On an exception the temporary file is removed and ``path`` is untouched; a full
    disk is reported as :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.",
            suffix=".tmp" + (suffix if suffix is not None else path.suffix),
            dir=path.parent,
        )
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path, code=exc.errno) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, code=exc.errno) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN written as null)."""
    write_text(path, json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def write_npz(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
    """Save arrays as ``.npz`` atomically."""
    saver = np.savez_compressed if compressed else np.savez
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        saver(fh, **arrays)


def write_csv(path: str | os.PathLike, frame: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame as CSV atomically (``index=False`` by default)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically.

    The archive is built in memory and then written with a plain file write: torch's own
    file writer turns a full disk into ``RuntimeError: ... unexpected pos``, a plain
    write raises ``OSError(ENOSPC)``, which :func:`atomic_path` reports as
    :class:`DiskFullError`. (Checkpoints and weights here are a few MB.)
    """
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """``fig.savefig`` atomically; the format follows the final path's suffix."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip("."))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
