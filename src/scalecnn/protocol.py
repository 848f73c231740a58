"""How a configuration's training protocol differs from the paper's.

The paper (arXiv 2211.10288) trained every model for at most 200 epochs with
early-stopping patience 10, batch size 16, kernel size 7, bicubic interpolation
and one fixed batch order, chose the learning rate from 1e-2 and 1e-3 by the
median validation accuracy of 5 seeds, and reported 50 runs per configuration on
emoji and 25 on the other datasets.

:func:`protocol_values` takes the relevant values out of a workflow config (the
rules pass them as params); :func:`protocol_differences` lists the differences
that make a run *not a reproduction* (e.g. ``"max 1 epoch"``);
:func:`seeds_difference` says when there are only fewer seeds (still the
paper's protocol); :func:`protocol_note` is the one line that tables, figures
and captions show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from scalecnn.study import PAPER_MODELS

PAPER_PROTOCOL: dict[str, Any] = {
    "max_epochs": 200,
    "patience": 10,
    "batch_size": 16,
    "kernel_size": 7,
    "interpolation": "bicubic",
    "reshuffle": False,
}
"""The paper's training settings (config keys of the same names)."""

PAPER_LEARNING_RATES: tuple[float, ...] = (0.01, 0.001)
PAPER_SELECTION_SEEDS = 5

PAPER_PROTOCOL_TEXT = "the paper's protocol"
NOT_A_REPRODUCTION = "not a reproduction"


@cache
def paper_seeds() -> dict[str, int]:
    """Runs the paper reported per configuration, by dataset (``paper_runs_summary.csv``)."""
    from scalecnn.plots.paper import load_paper_summary

    summary = load_paper_summary()
    return {str(d): int(n) for d, n in summary.groupby("data")["runs"].max().items()}


def protocol_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol part of a workflow config as a plain dict (for a rule's params).

    Keys: those of :data:`PAPER_PROTOCOL`, ``repetitions`` (dataset → seeds),
    ``model_repetitions`` (model → seeds, overriding ``repetitions``),
    ``learning_rates``, ``selection_seeds`` and ``paper_lr_models`` (``"all"`` or the
    list of models whose rate is the paper's) and ``models``.
    """
    values = {key: config[key] for key in PAPER_PROTOCOL}
    values["repetitions"] = {d: int(s["repetitions"]) for d, s in config["datasets"].items()}
    values["model_repetitions"] = {
        m: int(n) for m, n in config.get("model_repetitions", {}).items()
    }
    values["learning_rates"] = [float(lr) for lr in config["learning_rates"]]
    values["selection_seeds"] = int(config["selection_seeds"])
    values["models"] = list(config["models"])
    paper_lr = config.get("paper_lr_models", [])
    values["paper_lr_models"] = paper_lr if isinstance(paper_lr, str) else list(paper_lr)
    return values


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _selected_models(protocol: Mapping[str, Any]) -> list[str]:
    """The models whose learning rate is selected by training (not taken from the paper),
    of those the paper has: a model the paper lacks (gaussder, riesz, a plugin) has no
    protocol of the paper to differ from, so how its rate is chosen does not decide
    whether the study reproduces the paper."""
    paper_lr = protocol.get("paper_lr_models", [])
    if paper_lr == "all":
        return []
    # without "models", assume some model's rate is selected
    models = protocol.get("models", ["?"])
    return [m for m in models if m not in set(paper_lr) and (m in PAPER_MODELS or m == "?")]


def protocol_differences(protocol: Mapping[str, Any]) -> list[str]:
    """The differences from the paper's protocol that make a run not a reproduction, as
    short phrases (``"max 1 epoch"``, ``"patience 5"``, ``"batch size 32"``, ``"kernel
    size 5"``, ``"bilinear interpolation"``, ``"reshuffled batches"``, and for rates
    selected by training ``"learning rates 0.1, 0.01"`` or ``"learning rate selected
    from 1 seed"``); empty when the protocol is the paper's. Fewer seeds are not listed
    here (:func:`seeds_difference`)."""
    out = []
    if int(protocol["max_epochs"]) != PAPER_PROTOCOL["max_epochs"]:
        out.append(f"max {_plural(int(protocol['max_epochs']), 'epoch')}")
    if int(protocol["patience"]) != PAPER_PROTOCOL["patience"]:
        out.append(f"patience {int(protocol['patience'])}")
    if int(protocol["batch_size"]) != PAPER_PROTOCOL["batch_size"]:
        out.append(f"batch size {int(protocol['batch_size'])}")
    if int(protocol["kernel_size"]) != PAPER_PROTOCOL["kernel_size"]:
        out.append(f"kernel size {int(protocol['kernel_size'])}")
    if str(protocol["interpolation"]) != PAPER_PROTOCOL["interpolation"]:
        out.append(f"{protocol['interpolation']} interpolation")
    if bool(protocol["reshuffle"]) != PAPER_PROTOCOL["reshuffle"]:
        out.append("reshuffled batches")
    if _selected_models(protocol):
        rates = sorted((float(lr) for lr in protocol.get("learning_rates", [])), reverse=True)
        if rates and rates != sorted(PAPER_LEARNING_RATES, reverse=True):
            out.append("learning rates " + ", ".join(f"{lr:g}" for lr in rates))
        seeds = int(protocol.get("selection_seeds", PAPER_SELECTION_SEEDS))
        if seeds < PAPER_SELECTION_SEEDS:
            out.append(f"learning rate selected from {_plural(seeds, 'seed')}")
    return out


def seeds_difference(protocol: Mapping[str, Any], data: str | Sequence[str] | None = None) -> str:
    """``"3 seeds (paper: 50)"`` when ``data`` (one dataset; several or ``None``: every
    dataset of the protocol, each named) has fewer seeds than the paper reported, naming the
    paper models with a number of their own (``"2 seeds (energy_pool 1; paper: 50)"``);
    else ``""``."""
    repetitions: Mapping[str, int] = protocol["repetitions"]
    names = list(repetitions) if data is None else [data] if isinstance(data, str) else data
    paper = paper_seeds()
    # paper models given their own number of seeds (config key model_repetitions)
    models = protocol.get("models")
    own = {
        m: int(n)
        for m, n in protocol.get("model_repetitions", {}).items()
        if m in PAPER_MODELS and (models is None or m in models)
    }
    parts = []
    for name in names:
        ours, theirs = int(repetitions.get(name, 0)), paper.get(name)
        if theirs is not None and 0 < min([ours, *own.values()]) < theirs:
            others = "".join(f"{m} {n}; " for m, n in own.items() if n != ours)
            parts.append((name, f"{_plural(ours, 'seed')} ({others}paper: {theirs})"))
    if len(names) == 1:
        return parts[0][1] if parts else ""
    return ", ".join(f"{name} {text}" for name, text in parts)


def is_reproduction(protocol: Mapping[str, Any]) -> bool:
    """Whether the protocol is the paper's (fewer seeds allowed)."""
    return not protocol_differences(protocol)


def protocol_note(protocol: Mapping[str, Any], data: str | Sequence[str] | None = None) -> str:
    """One line on the protocol: ``"not a reproduction: max 1 epoch, 2 seeds (paper: 50)"``,
    ``"the paper's protocol, 3 seeds (paper: 50)"`` or ``"the paper's protocol"``."""
    diffs = protocol_differences(protocol)
    seeds = seeds_difference(protocol, data)
    if diffs:
        return f"{NOT_A_REPRODUCTION}: " + ", ".join(diffs + ([seeds] if seeds else []))
    return PAPER_PROTOCOL_TEXT + (f", {seeds}" if seeds else "")
