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
