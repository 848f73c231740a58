"""Stop signals of long jobs: a time limit, preemption or ``scancel`` ends them cleanly.

Slurm ends a job with SIGTERM and, ``KillWait`` seconds later, SIGKILL; with
``sbatch --signal=USR1@SECONDS`` it sends SIGUSR1 that long before the time limit. Two ways
of handling them:

* :func:`stop_requests` (training): the handlers only set a flag, which the job checks at
  its step boundaries. A checkpoint being written is finished (writes are atomic anyway),
  the job then stops with :class:`Stopped`.
* :func:`abort_on_signals` (evaluations, the DISCO basis: jobs without a checkpoint): the
  handler raises :class:`Stopped` at once; atomic writes in progress remove their
  temporary files, nothing reaches a final path, the rerun starts the job again.

:class:`Stopped` is a :class:`SystemExit` with status ``128 + signal number`` (143 for
SIGTERM, 138 for SIGUSR1, as a shell reports a process killed by that signal): it is not
caught by ``except Exception``, ends the process without a traceback, and Snakemake sees a
failed attempt, which its ``retries`` start again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)
"""What ends a job early: SIGTERM (time limit, preemption, ``scancel``), SIGUSR1
(``sbatch --signal=USR1@SECONDS``, ahead of the limit)."""


class Stopped(SystemExit):
    """The job stopped after a stop signal; exit status ``128 + signum``."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.message = message

    def __str__(self) -> str:
        return self.message


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, etc."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """Set by a stop signal; checked by the job at its step boundaries."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """Name of the signal that arrived (``SIGTERM``), or ``""``."""
        return signal_name(self.signum) if self.signum is not None else ""

    def __call__(self) -> bool:
        """Same as :attr:`requested` (usable as a ``should_stop`` callback)."""
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:  # the first signal names the stop
            self.signum = signum

    def stop(self, message: str) -> Stopped:
        """Log ``message`` (one line) and return the :class:`Stopped` to raise."""
        if self.signum is None:
            raise RuntimeError("no stop signal arrived")
        log.warning("%s", message)
        return Stopped(self.signum, message)


@contextmanager
def _handlers(handler, signals: Sequence[int]) -> Iterator[None]:
    """Install ``handler`` for ``signals`` in the main thread, restore the old ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread: leave them alone
        return
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def stop_requests(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Within the block, ``signals`` set the yielded :class:`StopRequest` instead of ending
    the process; the caller stops at its next step boundary (``raise request.stop(...)``)."""
    request = StopRequest()
    with _handlers(request._handle, signals):
        yield request


@contextmanager
def abort_on_signals(what: str, signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Stopped` where the job is; leaving the
    block logs one line: ``stopped by SIGTERM during <what>; nothing written; rerun starts
    it again``."""

    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:  # a second signal must not interrupt the clean-up of the first
            return
        fired.append(signum)
        raise Stopped(signum, f"stopped by {signal_name(signum)} during {what}")

    try:
        with _handlers(handler, signals):
            yield
    except Stopped as exc:
        exc.message = f"{exc.message}; nothing written; rerun starts it again"
        log.warning("%s", exc.message)
        raise
