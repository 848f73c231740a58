# Input functions of the paper's figures and tables and the comparison with the paper
# (rules/figures.smk), and the list of them that rule all asks for. No rules here.
# Every artefact asks only for the per-run files of the configurations it shows (never the
# global tables), so that asking for one builds only its own trainings and evaluations.
# all_figures() lists the artefacts the config can build and prints, for each one it skips,
# what the config lacks.
import sys

from scalecnn.plots.accuracy import FIG4_EXCLUDED_MODELS, FIG4_PANELS
from scalecnn.plots.equivariance import FIG6_DATA, FIG6_EVALUATION, FIG6_EXCLUDED_MODELS
from scalecnn.plots.generalization import FIG5_DATA, FIG5_EVALUATIONS
from scalecnn.plots.tables import TABLE2_EVALUATION

FIG4_EVALUATIONS = [int(e) for e, _ in FIG4_PANELS]
INDICES_MODEL = {"fig7": "slice_pool", "suppl_fig4": "pixel_pool"}
FIGURE_LABELS = {
    "fig4": "Fig. 4",
    "suppl_fig1": "Suppl. Fig. 1",
    "fig5": "Fig. 5",
    "suppl_fig2": "Suppl. Fig. 2",
    "fig6": "Fig. 6",
    "suppl_fig3": "Suppl. Fig. 3",
    "fig7": "Fig. 7",
    "suppl_fig4": "Suppl. Fig. 4",
    "table2": "Table 2",
    "compare": "comparison table",
    "compare_scatter": "comparison scatter",
    "compare_generalization": "comparison of generalisation",
}


def _figure_configs(kind, data=None):
    """(data, model, evaluation) triples whose runs the artefact ``kind`` shows."""
    if kind == "fig4":
        return [
            (d, m, e)
            for d, m, e in configurations()
            if e in FIG4_EVALUATIONS and m not in FIG4_EXCLUDED_MODELS
        ]
    if kind in (
        "suppl_fig1",
        "suppl_fig2",
        "compare",
        "compare_scatter",
        "compare_generalization",
    ):
        return configurations()
    if kind == "fig5":
        return [
            (d, m, e)
            for d, m, e in configurations()
            if d == data and e in FIG5_EVALUATIONS
        ]
    if kind == "fig6":
        return [
            (d, m, e)
            for d, m, e in equivariance_configurations()
            if d == data and e == FIG6_EVALUATION and m not in FIG6_EXCLUDED_MODELS
        ]
    if kind == "suppl_fig3":
        return equivariance_configurations()
    if kind == "table2":
        return [(d, m, e) for d, m, e in configurations() if e == TABLE2_EVALUATION]
    if kind in INDICES_MODEL:
        return [c for c in indices_configurations() if c[1] == INDICES_MODEL[kind]]
    raise ValueError(f"unknown figure kind {kind!r}")


def _lacks(key, need, have):
    """Text for a config key that has none of the needed values; None if it has one."""
    if set(need) & set(have):
        return None
    return (
        f"config '{key}' has none of [{', '.join(map(str, need))}]"
        f" (it has [{', '.join(map(str, have))}])"
    )


def _figure_missing(kind, data=None):
    """None when the config has runs for the artefact ``kind``; else what it lacks."""
    if _figure_configs(kind, data):
        return None
    eq, ix = config["equivariance"], config["indices"]
    if kind == "fig4":
        checks = [_lacks("evaluations", FIG4_EVALUATIONS, EVALUATIONS)]
        checks.append(
            f"config 'models' has no model besides {', '.join(FIG4_EXCLUDED_MODELS)}"
        )
    elif kind == "fig5":
        checks = [
            _lacks("datasets", [data], DATASETS),
            _lacks("evaluations", FIG5_EVALUATIONS, EVALUATIONS),
        ]
    elif kind == "fig6":
        models = [m for m in eq["models"] if m not in FIG6_EXCLUDED_MODELS]
        checks = [
            _lacks("datasets", [data], DATASETS),
            _lacks("equivariance.datasets", [data], eq["datasets"]),
            _lacks("evaluations", [FIG6_EVALUATION], EVALUATIONS),
            _lacks("equivariance.models", models, MODELS),
        ]
    elif kind == "suppl_fig3":
        checks = [
            _lacks("equivariance.datasets", eq["datasets"], DATASETS),
            _lacks("equivariance.models", eq["models"], MODELS),
        ]
    elif kind in INDICES_MODEL:
        model = INDICES_MODEL[kind]
        checks = [
            _lacks("models", [model], MODELS),
            _lacks("indices.models", [model], ix["models"]),
            _lacks("datasets", [ix["data"]], DATASETS),
            _lacks("evaluations", [ix["evaluation"]], EVALUATIONS),
        ]
    elif kind == "table2":
        checks = [_lacks("evaluations", [TABLE2_EVALUATION], EVALUATIONS)]
    else:
        checks = []
    return next((c for c in checks if c), "no configuration of the config matches")


def _figure_label(kind, data=None):
    label = FIGURE_LABELS.get(kind, kind)
    return f"{label} for {data}" if data else label


def _require_figure(kind, data=None):
    reason = _figure_missing(kind, data)
    if reason:
        raise ValueError(
            f"{_figure_label(kind, data)} cannot be built with this config: {reason}"
        )


def figure_files(kind, name, data=None):
    """File ``name`` (metrics.json, generalization.csv, equivariance.npz) of every reported
    run that the artefact ``kind`` (for dataset ``data``) shows."""
    _require_figure(kind, data)
    return chosen_files(_figure_configs(kind, data), name)


def figure_selection(kind, data=None):
    """Selection records of the configurations that the artefact ``kind`` shows."""
    _require_figure(kind, data)
    return [
        SELECTION.format(data=d, model=m, evaluation=e)
        for d, m, e in _figure_configs(kind, data)
    ]


def figure_indices(kind):
    """best.npz of the best run whose pooling indices Fig. 7 / Suppl. Fig. 4 show."""
    _require_figure(kind)
    return [
        f"results/indices/{d}/{m}/eval{e}/best.npz" for d, m, e in _figure_configs(kind)
    ]


# --- input functions of the figure rules ---
def get_figure_files(kind, name):
    """Input function: file ``name`` (metrics.json, generalization.csv, equivariance.npz) of
    the reported runs that the artefact ``kind`` shows, for the rule's {data} wildcard where
    it has one."""

    def get_files(wildcards):
        return figure_files(kind, name, wildcards.get("data"))

    get_files.__name__ = f"get_{kind}_{name.replace('.', '_')}"
    return get_files


def get_figure_selection(kind):
    """Input function: the selection records of the configurations ``kind`` shows."""

    def get_selection(wildcards):
        return figure_selection(kind, wildcards.get("data"))

    get_selection.__name__ = f"get_{kind}_selection"
    return get_selection


def get_figure_indices(kind):
    """Input function: best.npz of the best run whose pooling indices ``kind`` (fig7,
    suppl_fig4) shows."""

    def get_indices(wildcards):
        return figure_indices(kind)

    get_indices.__name__ = f"get_{kind}_indices"
    return get_indices


def _figure_artefacts():
    """(kind, data, targets) of every figure and table of the paper and the comparison."""

    def fig(stem):
        return [f"results/figures/{stem}.pdf", f"results/figures/{stem}.png"]

    fig5_data = DATASETS + [FIG5_DATA] * (FIG5_DATA not in DATASETS)
    eq_data = [d for d in config["equivariance"]["datasets"] if d in DATASETS]
    fig6_data = eq_data + [FIG6_DATA] * (FIG6_DATA not in eq_data)
    return [
        ("fig4", None, fig("fig4_accuracy")),
        ("suppl_fig1", None, fig("suppl_fig1_accuracy_boxes")),
        *[("fig5", d, fig(f"fig5_generalization_{d}")) for d in fig5_data],
        ("suppl_fig2", None, fig("suppl_fig2_generalization")),
        *[("fig6", d, fig(f"fig6_equivariance_{d}")) for d in fig6_data],
        ("suppl_fig3", None, fig("suppl_fig3_equivariance")),
        ("fig7", None, fig("fig7_slice_indices")),
        ("suppl_fig4", None, fig("suppl_fig4_pixel_indices")),
        (
            "table2",
            None,
            [
                "results/tables/table2_train_time.tex",
                "results/tables/table2_train_time.csv",
            ],
        ),
        (
            "compare",
            None,
            ["results/tables/compare_paper.csv", "results/tables/compare_paper.md"],
        ),
        ("compare_scatter", None, fig("compare_paper_scatter")),
        ("compare_generalization", None, fig("compare_paper_generalization")),
    ]


def all_figures():
    """Targets of every figure and table the config has runs for; one line on stderr per
    artefact skipped, naming what the config lacks."""
    targets = []
    for kind, data, paths in _figure_artefacts():
        reason = _figure_missing(kind, data)
        if reason:
            stem = os.path.splitext(paths[0])[0]
            exts = ",".join(os.path.splitext(p)[1].lstrip(".") for p in paths)
            print(
                f"figures: skipping {_figure_label(kind, data)} ({stem}.{{{exts}}}): {reason}",
                file=sys.stderr,
            )
        else:
            targets += paths
    return targets
