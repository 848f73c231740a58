"""The four evaluation scenarios: which object sizes are trained on and tested on."""

from __future__ import annotations

from dataclasses import dataclass

ALL_SIZES = tuple(range(17, 65))


@dataclass(frozen=True)
class Scenario:
    """One evaluation scenario of the paper."""

    id: int
    name: str
    train_sizes: tuple[int, ...]
    test_sizes: tuple[int, ...]


SCENARIOS: dict[int, Scenario] = {
    1: Scenario(1, "Small2Large", tuple(range(17, 33)), tuple(range(33, 65))),
    2: Scenario(2, "Mid2Rest", tuple(range(33, 49)), tuple(range(17, 33)) + tuple(range(49, 65))),
    3: Scenario(3, "Large2Small", tuple(range(49, 65)), tuple(range(17, 49))),
    4: Scenario(4, "All2All", ALL_SIZES, ALL_SIZES),
}


def get_scenario(evaluation: int) -> Scenario:
    """The scenario with id ``evaluation`` (1..4); ``ValueError`` otherwise."""
    try:
        return SCENARIOS[int(evaluation)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            f"unknown evaluation {evaluation!r}; expected one of {sorted(SCENARIOS)} "
            "(1 Small2Large, 2 Mid2Rest, 3 Large2Small, 4 All2All)"
        ) from None
