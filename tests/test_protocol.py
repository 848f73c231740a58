"""How a config's protocol differs from the paper's, and where the comparison says so."""

from pathlib import Path
from types import SimpleNamespace

import jinja2
import pandas as pd
import pytest
import yaml

from scalecnn.plots.compare import compare_markdown, compare_table, plot_compare_scatter
from scalecnn.protocol import (
    is_reproduction,
    protocol_differences,
    protocol_note,
    protocol_values,
    seeds_difference,
)

REPO = Path(__file__).resolve().parents[1]


def _config(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_the_three_configs():
    paper = protocol_values(_config("config.yaml"))
    assert protocol_differences(paper) == [] and seeds_difference(paper) == ""
    assert protocol_note(paper) == "the paper's protocol"
    quick = protocol_values(_config("quick.yaml"))
    assert quick["repetitions"] == {"emoji": 2}
    assert protocol_differences(quick) == [
        "max 40 epochs",
        "patience 3",
        "learning rate selected from 1 seed",
    ]
    assert protocol_note(quick) == (
        "not a reproduction: max 40 epochs, patience 3, learning rate selected from 1 seed, "
        "2 seeds (energy_pool 1; paper: 50)"
    )
    assert not is_reproduction(quick)
    emoji = protocol_values(_config("reproduce_emoji.yaml"))
    assert is_reproduction(emoji)
    assert protocol_note(emoji, "emoji") == "the paper's protocol, 3 seeds (paper: 50)"


def _protocol(**changes):
    base = protocol_values(_config("config.yaml"))
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"max_epochs": 50}, ["max 50 epochs"]),
        ({"patience": 5, "batch_size": 32}, ["patience 5", "batch size 32"]),
        (
            {"kernel_size": 5, "interpolation": "bilinear"},
            ["kernel size 5", "bilinear interpolation"],
        ),
        ({"reshuffle": True}, ["reshuffled batches"]),
        ({"learning_rates": [0.1, 0.01]}, ["learning rates 0.1, 0.01"]),
        ({"learning_rates": [0.001, 0.01]}, []),  # same rates, other order
        # the paper's rates for every model: no selection, its settings do not matter
        ({"learning_rates": [0.1], "selection_seeds": 1, "paper_lr_models": "all"}, []),
        # one model still selected
        (
            {"selection_seeds": 2, "paper_lr_models": ["standard"]},
            ["learning rate selected from 2 seeds"],
        ),
        # the paper's rates for its models; models the paper lacks selected from 3 seeds
        (
            {
                "models": ["standard", "gaussder", "riesz"],
                "selection_seeds": 3,
                "paper_lr_models": ["standard"],
            },
            [],
        ),
        (
            {"models": ["standard", "gaussder"], "selection_seeds": 3, "paper_lr_models": []},
            ["learning rate selected from 3 seeds"],
        ),
    ],
)
def test_each_difference(changes, expected):
    assert protocol_differences(_protocol(**changes)) == expected


def test_seeds_per_dataset():
    protocol = _protocol(repetitions={"emoji": 3, "mnist": 25, "aerial": 1})
    assert seeds_difference(protocol, "emoji") == "3 seeds (paper: 50)"
    assert seeds_difference(protocol, "mnist") == ""
    assert seeds_difference(protocol) == "emoji 3 seeds (paper: 50), aerial 1 seed (paper: 25)"
    assert protocol_note(protocol, "mnist") == "the paper's protocol"


def _runs():
    return pd.DataFrame(
        {
            "data": ["emoji", "emoji"],
            "model": ["standard", "standard"],
            "evaluation": [2, 2],
            "lr": [0.001, 0.001],
            "seed": [1, 2],
            "status": ["ok", "ok"],
            "test_acc": [40.0, 42.0],
        }
    )


def test_comparison_table_and_scatter_say_not_a_reproduction():
    quick = protocol_values(_config("quick.yaml"))
    table = compare_table(_runs(), protocol=quick)
    note = (
        "not a reproduction: max 40 epochs, patience 3, learning rate selected from 1 seed, "
        "2 seeds (energy_pool 1; paper: 50)"
    )
    assert table["protocol"].tolist() == [note]
    md = compare_markdown(table)
    assert (
        "**Not a reproduction: max 40 epochs, patience 3, learning rate selected from 1 seed, "
        in md
    )
    assert md.count("\n|") == len(table) + 2  # still one pipe table
    fig = plot_compare_scatter(table)
    assert fig._suptitle.get_text().startswith("Not a reproduction: max 40 epochs")
    # without a protocol: an empty column, no line
    plain = compare_table(_runs())
    assert plain["protocol"].tolist() == [""]
    assert "reproduction" not in compare_markdown(plain).lower()


@pytest.mark.parametrize(
    "caption", ["compare_paper", "compare_paper_scatter", "compare_paper_generalization"]
)
@pytest.mark.parametrize(
    "config,start",
    [
        ("quick.yaml", "**Not a reproduction: max 40 epochs, patience 3, learning rate selected"),
        ("reproduce_emoji.yaml", "**The paper's protocol, 3 seeds (paper: 50).**"),
    ],
)
def test_captions_say_not_a_reproduction(caption, config, start):
    cfg = _config(config)
    template = (REPO / "workflow" / "report" / f"{caption}.rst").read_text()
    snakemake = SimpleNamespace(
        config=cfg, params=SimpleNamespace(protocol_note=protocol_note(protocol_values(cfg)))
    )
    text = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(template)
    rendered = text.render(snakemake=snakemake)
    assert rendered.startswith(start), rendered[:200]
    assert ("no test of the paper" in rendered) == (config == "quick.yaml")


def test_generalization_comparison_notes_the_protocol():
    from scalecnn.plots.compare import plot_compare_generalization

    gen = pd.DataFrame(
        [
            {"model": "standard", "data": "emoji", "eval": 2, "lr": 0.001, "seed": s}
            | {f"s{size}": 0.5 for size in range(17, 65)}
            for s in (1, 2)
        ]
    )
    note = protocol_note(protocol_values(_config("quick.yaml")))
    fig = plot_compare_generalization(gen, protocol=note)
    texts = "\n".join(t.get_text() for t in fig.texts)
    assert "Not a reproduction: max 40 epochs, patience 3, learning rate selected" in texts
    assert "2 run(s) with status ok" in texts
    plain = plot_compare_generalization(gen)
    assert "reproduction" not in "\n".join(t.get_text() for t in plain.texts)
