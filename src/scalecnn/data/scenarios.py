"""The four evaluation scenarios: which object sizes are trained on and tested on.

Built from the study's facts (:data:`scalecnn.study.EVALUATION_NAMES`,
:func:`scalecnn.study.split_sizes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from scalecnn.study import ALL_SIZES, EVALUATION_NAMES, split_sizes

__all__ = ["ALL_SIZES", "SCENARIOS", "Scenario", "get_scenario"]


@dataclass(frozen=True)
class Scenario:
    """One evaluation scenario of the paper."""

    id: int
    name: str
    train_sizes: tuple[int, ...]
    test_sizes: tuple[int, ...]


SCENARIOS: dict[int, Scenario] = {
    e: Scenario(e, name, *split_sizes(e)) for e, name in EVALUATION_NAMES.items()
}


def get_scenario(evaluation: int) -> Scenario:
    """The scenario with id ``evaluation`` (1..4); ``ValueError`` otherwise."""
    try:
        return SCENARIOS[int(evaluation)]
    except (KeyError, ValueError, TypeError):
        names = ", ".join(f"{e} {n}" for e, n in EVALUATION_NAMES.items())
        raise ValueError(
            f"unknown evaluation {evaluation!r}; expected one of {sorted(SCENARIOS)} ({names})"
        ) from None
