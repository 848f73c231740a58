"""Logging set-up for workflow scripts: progress into the job's log file."""

from __future__ import annotations

import logging
import os
import sys


def log_to_file(path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Send ``logging`` records and uncaught errors of this process to ``path``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )

    def _excepthook(exc_type, exc, tb):
        logging.getLogger("scalecnn").critical("failed", exc_info=(exc_type, exc, tb))

    sys.excepthook = _excepthook
