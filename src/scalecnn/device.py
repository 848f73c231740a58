"""Device and thread selection shared by the entry points."""

from __future__ import annotations

import torch


def resolve_device(device: str | None = "auto") -> torch.device:
    """``auto`` (or ``None``) → CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Raises ``ValueError`` for an unknown device string or CUDA asked for but absent.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}; expected auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return dev


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads (the job's allotment); ``None`` keeps the default."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def tune_allocator() -> bool:
    """Keep large freed blocks in the process (glibc ``mallopt``), where available.

    The scale-convolution layers allocate and free tensors of ~100 MB every step;
    by default glibc hands such blocks back to the kernel and page-faults them in
    again, which costs about a fifth of a pixel_pool training step on CPU. Raising
    the mmap and trim thresholds keeps them for reuse. Returns whether it applied.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 31))
