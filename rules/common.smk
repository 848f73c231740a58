# Config validation, wildcard constraints and input functions. No rule logic here.
import json
import os
from pathlib import Path

from snakemake.utils import validate

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


def data_file(wildcards):
    return f"results/data/{wildcards.data}.npz"


def basis_file(wildcards):
    """The disco model's basis file; nothing for other models."""
    return [config["disco"]["basis"]] if wildcards.model == "disco" else []


def selection_runs(wildcards):
    """metrics.json of the selection seeds at every learning rate."""
    return expand(
        "results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/metrics.json",
        data=wildcards.data,
        model=wildcards.model,
        evaluation=wildcards.evaluation,
        lr=[fmt_lr(lr) for lr in LRS],
        seed=range(1, config["selection_seeds"] + 1),
    )


def chosen_lr(data, model, evaluation):
    """The learning rate picked by the selection checkpoint (re-evaluates the DAG)."""
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


def reported_runs(datasets=None, models=None, evaluations=None):
    return [
        run
        for d, m, e in configurations(datasets, models, evaluations)
        for run in chosen_runs(d, m, e)
    ]


def reported_files(name, datasets=None, models=None, evaluations=None):
    """File ``name`` of every reported run (chosen learning rate) of the configurations."""
    return [f"{run}/{name}" for run in reported_runs(datasets, models, evaluations)]


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
    return [
        f"{run}/{name}"
        for d, m, e in equivariance_configurations()
        for run in chosen_runs(d, m, e)
    ]


def equivariance_configurations():
    eq = config["equivariance"]
    return configurations(eq["datasets"], eq["models"])


def indices_configurations():
    ix = config["indices"]
    return configurations([ix["data"]], ix["models"], [ix["evaluation"]])


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
