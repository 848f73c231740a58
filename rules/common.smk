# Config validation, wildcard constraints and input functions. No rule logic here.
import json
import os
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException
from snakemake.utils import validate

from scalecnn.protocol import protocol_note, protocol_values
from scalecnn.selection import paper_lr_models

validate(config, schema="../workflow/schemas/config.schema.yaml")

DATASETS = list(config["datasets"])
MODELS = list(config["models"])
EVALUATIONS = [int(e) for e in config["evaluations"]]
LRS = [float(lr) for lr in config["learning_rates"]]


def fmt_lr(lr):
    """Canonical text of a learning rate in paths: 0.01, 0.001, 1e-05."""
    return f"{float(lr):g}"


def _check_models():
    from scalecnn.models import list_models, load_plugins

    load_plugins(config.get("plugins", []))
    known = list_models()
    unknown = [m for m in MODELS if m not in known]
    if unknown:
        raise ValueError(
            f"config key 'models': unknown model(s) {unknown}; registered: {known} "
            "(add a plugin module under 'plugins' to register your own)"
        )
    for ds, spec in config["datasets"].items():
        if spec["source"] == "generate" and ds != "emoji":
            raise ValueError(
                f"config key 'datasets.{ds}.source': only emoji can be generated offline"
            )


_check_models()


def _paper_lrs():
    """The paper's rate of every configuration of a model in paper_lr_models; stops the
    workflow naming the key when the paper has none (e.g. a plugin model)."""
    from scalecnn.selection import paper_lrs

    return paper_lrs(
        [(d, m, e) for d in DATASETS for m in PAPER_LR_MODELS for e in EVALUATIONS]
    )


PAPER_LR_MODELS = paper_lr_models(config.get("paper_lr_models", []), MODELS)
PAPER_LRS = _paper_lrs()


wildcard_constraints:
    data="|".join(DATASETS),
    model="[A-Za-z0-9_]+",
    evaluation="[1-4]",
    lr="[0-9.e+-]+",
    seed="[0-9]+",


RUN = "results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}"
SELECTION = "results/selection/{data}/{model}/eval{evaluation}.json"


def res(kind, key, default=None):
    return config["resources"][kind].get(key, default)


def get_train_runtime(wildcards, attempt):
    """Minutes of a training (or DISCO basis) job: the config's resources.train.runtime
    times the attempt, so a retry after a time limit gets more time (and resumes)."""
    return res("train", "runtime") * attempt


def get_evaluate_runtime(wildcards, attempt):
    """Minutes of an evaluation job: resources.evaluate.runtime times the attempt."""
    return res("evaluate", "runtime") * attempt


def data_file(wildcards):
    return f"results/data/{wildcards.data}.npz"


def basis_file(wildcards):
    """The disco model's basis file; nothing for other models."""
    return [config["disco"]["basis"]] if wildcards.model == "disco" else []


def get_selection_runs(wildcards):
    """metrics.json of the selection seeds at every learning rate; none for a model whose
    rate is the paper's (config key paper_lr_models)."""
    if wildcards.model in PAPER_LR_MODELS:
        return []
    return expand(
        "results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/metrics.json",
        data=wildcards.data,
        model=wildcards.model,
        evaluation=wildcards.evaluation,
        lr=[fmt_lr(lr) for lr in LRS],
        seed=range(1, config["selection_seeds"] + 1),
    )


def get_lr_source(wildcards):
    """Where the select_lr checkpoint takes the rate from: 'paper' or 'selection'."""
    return "paper" if wildcards.model in PAPER_LR_MODELS else "selection"


def chosen_lr(data, model, evaluation):
    """The paper's rate for a model in paper_lr_models (known before any job runs, so a dry
    run lists its trainings); otherwise the rate picked by the selection checkpoint
    (re-evaluates the DAG)."""
    if model in PAPER_LR_MODELS:
        return fmt_lr(PAPER_LRS[(data, model, int(evaluation))])
    record = checkpoints.select_lr.get(
        data=data, model=model, evaluation=evaluation
    ).output[0]
    return fmt_lr(json.loads(Path(record).read_text())["chosen_lr"])


def chosen_runs(data, model, evaluation):
    """Run directories of the chosen learning rate, seeds 1..repetitions."""
    lr = chosen_lr(data, model, evaluation)
    reps = config["datasets"][data]["repetitions"]
    return [
        RUN.format(data=data, model=model, evaluation=evaluation, lr=lr, seed=s)
        for s in range(1, reps + 1)
    ]


def configurations(datasets=None, models=None, evaluations=None):
    """(data, model, evaluation) triples of the study, optionally restricted."""
    return [
        (d, m, e)
        for d in (datasets or DATASETS)
        for m in (models or MODELS)
        for e in (evaluations or EVALUATIONS)
        if d in DATASETS and m in MODELS and e in EVALUATIONS
    ]


def chosen_files(configs, name):
    """File ``name`` of the reported runs of ``configs``. While selections are pending, one
    IncompleteCheckpointException names all of them, so the DAG schedules the selection
    trainings of every needed configuration at once (not one configuration at a time).
    """
    files, pending, checkpoint_rule = [], [], None
    for d, m, e in configs:
        try:
            runs = chosen_runs(d, m, e)
        except IncompleteCheckpointException as exc:
            pending.append(exc.targetfile)
            checkpoint_rule = exc.rule
            continue
        files += [f"{run}/{name}" for run in runs]
    if pending:
        raise IncompleteCheckpointException(checkpoint_rule, pending)
    return files


def reported_files(name, datasets=None, models=None, evaluations=None):
    """File ``name`` of every reported run (chosen learning rate) of the configurations."""
    return chosen_files(configurations(datasets, models, evaluations), name)


def best_run_candidates(wildcards):
    """metrics.json of the reported runs among which the best one is picked."""
    return [
        f"{run}/metrics.json"
        for run in chosen_runs(wildcards.data, wildcards.model, wildcards.evaluation)
    ]


def selection_records(datasets=None):
    return [
        SELECTION.format(data=d, model=m, evaluation=e)
        for d, m, e in configurations(datasets)
    ]


def equivariance_files(name):
    """File ``name`` of the reported runs whose equivariance error is measured."""
    return chosen_files(equivariance_configurations(), name)


def equivariance_configurations():
    eq = config["equivariance"]
    return configurations(eq["datasets"], eq["models"])


def indices_configurations():
    ix = config["indices"]
    return configurations([ix["data"]], ix["models"], [ix["evaluation"]])


def get_verdict_metrics(wildcards):
    """metrics.json of the reported runs of every model for the verdict's (data, evaluation)."""
    evaluation = int(wildcards.evaluation)
    if evaluation not in EVALUATIONS:
        raise ValueError(
            f"verdict for {wildcards.data} eval{evaluation}: config 'evaluations' has "
            f"{EVALUATIONS}"
        )
    return chosen_files(
        configurations([wildcards.data], None, [evaluation]), "metrics.json"
    )


def verdict_targets():
    """The verdict tables and figures of every (data, evaluation) of the config."""
    return [
        f"results/reproduction/{d}_eval{e}{suffix}"
        for d in DATASETS
        for e in EVALUATIONS
        for suffix in (".csv", "_runs.csv", ".pdf", ".png")
    ]


PROTOCOL = protocol_values(config)
RECORD_PAIRS = [(d, e) for d in DATASETS for e in EVALUATIONS]
NOTES = "docs/reproduction_notes.md"


def protocol_text(data=None):
    """How the config's protocol differs from the paper's (scalecnn.protocol), one line."""
    return protocol_note(PROTOCOL, data)


def get_verdict_note(wildcards):
    """The protocol line written under the verdict figure of wildcards.data."""
    return protocol_text(wildcards.data)


def record_files(folder, suffix):
    """{folder}/{data}_eval{E}{suffix} of every (data, evaluation) of the record."""
    return [f"{folder}/{d}_eval{e}{suffix}" for d, e in RECORD_PAIRS]


def get_record_notes(wildcards):
    """The hand-written notes included in the record, when the file exists."""
    return [NOTES] if os.path.exists(NOTES) else []


def config_name():
    """The config file(s) of this invocation, relative to the workflow when inside it."""
    files = [str(f) for f in workflow.config_settings.configfiles] or [
        "config/config.yaml"
    ]
    base = os.path.abspath(workflow.basedir)
    rel = [
        os.path.relpath(f, base) if os.path.abspath(f).startswith(base + os.sep) else f
        for f in files
    ]
    return " ".join(rel)


def paper_rate_runs():
    """metrics.json of every run whose rate is the paper's. They are known before any
    selection has run; rule all lists them so that they start at once, beside the
    selection trainings, instead of after the last selection checkpoint."""
    return [
        f"{run}/metrics.json"
        for d, m, e in configurations()
        if m in PAPER_LR_MODELS
        for run in chosen_runs(d, m, e)
    ]


def all_tables():
    tables = [
        "results/tables/runs.csv",
        "results/tables/selection.csv",
        *expand("results/tables/generalization_{data}.csv", data=DATASETS),
    ]
    if equivariance_configurations():
        tables.append("results/tables/equivariance.csv")
    tables += [
        f"results/indices/{d}/{m}/eval{e}/best.npz"
        for d, m, e in indices_configurations()
    ]
    return tables


# --- figures ---
# Inputs of the paper's figures and tables (rules/figures.smk). Every artefact asks only for
# the per-run files of the configurations it shows (never the global tables), so that asking
# for one builds only its own trainings and evaluations. all_figures() lists the artefacts the
# config can build and prints, for each one it skips, what the config lacks.
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
