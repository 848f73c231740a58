# Config validation, wildcard constraints, paths, threads and resources, and the input and
# params functions of the rules (get_*). No rules here; the figures' input functions are in
# rules/common_figures.smk.
import json
import os
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException
from snakemake.utils import validate

from scalecnn.protocol import protocol_note, protocol_values
from scalecnn.selection import paper_lr_models
from scalecnn.study import GENERATED_DATASETS, format_lr

validate(config, schema="../workflow/schemas/config.schema.yaml")

DATASETS = list(config["datasets"])
MODELS = list(config["models"])
EVALUATIONS = [int(e) for e in config["evaluations"]]
LRS = [float(lr) for lr in config["learning_rates"]]


def fmt_lr(lr):
    """Canonical text of a learning rate in paths: 0.01, 0.001, 1e-05."""
    return format_lr(lr)


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
        if spec["source"] == "generate" and ds not in GENERATED_DATASETS:
            raise ValueError(
                f"config key 'datasets.{ds}.source': only {list(GENERATED_DATASETS)} can "
                "be generated offline"
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


# --- paths ---
# One training run: its folder under results/runs/ holds metrics.json, history.csv,
# model.pt, predictions.npy and, for reported runs, generalization.csv and
# equivariance.npz. Its log and benchmark files use the same RUN_ID under results/logs/ and
# results/benchmarks/.
RUN_ID = "{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}"
RUN = f"results/runs/{RUN_ID}"
# The learning rate chosen for one configuration (checkpoint select_lr).
SELECTION = "results/selection/{data}/{model}/eval{evaluation}.json"


# --- threads and resources ---
# Every rule takes its threads, mem_mb, runtime (and gpu) from config key 'resources', one
# family per kind of job: train (trainings, the DISCO basis), evaluate (generalization,
# equivariance, best-run indices) and light (data, selection, tables, figures). Where two
# settings meet, the first of these wins: --set-threads / --set-resources on the command
# line; a profile's set-resources (profiles/slurm*: trainings and evaluations); config
# 'resources'; a profile's default-resources (only rules without their own, e.g. rule all).
RESOURCE_DEFAULTS = {"gpu": 0}


def res(family, key):
    """Value ``key`` (threads, mem_mb, runtime, gpu) of family ``family`` of config key
    'resources'; gpu defaults to 0."""
    return config["resources"][family].get(key, RESOURCE_DEFAULTS.get(key))


def get_train_runtime(wildcards, attempt):
    """Minutes of a training (or DISCO basis) job: the config's resources.train.runtime
    times the attempt, so a retry after a time limit gets more time (and resumes)."""
    return res("train", "runtime") * attempt


def get_evaluate_runtime(wildcards, attempt):
    """Minutes of an evaluation job: resources.evaluate.runtime times the attempt."""
    return res("evaluate", "runtime") * attempt


# --- rule disco_basis ---
def get_disco_scales(wildcards):
    """The scales of the DISCO basis (config key disco.scales) as command-line text."""
    return " ".join(str(s) for s in config["disco"]["scales"])


# --- rule prepare_data ---
def get_data_source(wildcards):
    """How the dataset is obtained: config key datasets.<data>.source."""
    return config["datasets"][wildcards.data]["source"]


def get_local_data_file(wildcards):
    """Where a hand-placed STIR file of the dataset is looked for (config key data_dir)."""
    return f"{config['data_dir']}/{wildcards.data}.npz"


# --- rules train, select_lr, generalization, equivariance, best_run_indices ---
def get_data_file(wildcards):
    """The prepared STIR file of wildcards.data."""
    return f"results/data/{wildcards.data}.npz"


def get_disco_basis(wildcards):
    """The disco model's basis file; nothing for other models."""
    return [config["disco"]["basis"]] if wildcards.model == "disco" else []


def get_run_dir(wildcards, output):
    """The run folder a training writes into (that of its metrics.json)."""
    return os.path.dirname(output.metrics)


def get_train_options(wildcards, input):
    """Optional arguments of scalecnn train: --reshuffle (config key reshuffle), the disco
    basis, and the plugin modules that register extra models (config key plugins)."""
    return " ".join(
        (["--reshuffle"] if config["reshuffle"] else [])
        + [f"--basis {b}" for b in input.basis]
        + [f"--plugin {p}" for p in config.get("plugins", [])]
    )


def get_evaluated_run(wildcards, input):
    """The run folder an evaluation reads (that of its metrics.json)."""
    return os.path.dirname(input.metrics)


def get_selection_runs(wildcards):
    """metrics.json of the selection seeds at every learning rate; none for a model whose
    rate is the paper's (config key paper_lr_models)."""
    if wildcards.model in PAPER_LR_MODELS:
        return []
    return expand(
        f"{RUN}/metrics.json",
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


def get_repetitions(data, model):
    """Seeds of the chosen rate: config key model_repetitions.<model> where set, else
    datasets.<data>.repetitions."""
    return config.get("model_repetitions", {}).get(
        model, config["datasets"][data]["repetitions"]
    )


def chosen_runs(data, model, evaluation):
    """Run directories of the chosen learning rate, seeds 1..repetitions."""
    lr = chosen_lr(data, model, evaluation)
    reps = get_repetitions(data, model)
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


def get_best_run_candidates(wildcards):
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


# --- the tables (rules/aggregate.smk) ---
def get_reported_metrics(wildcards):
    """metrics.json of every reported run of the study (results/tables/runs.csv)."""
    return reported_files("metrics.json")


def get_reported_generalization(wildcards):
    """generalization.csv of every reported run of wildcards.data."""
    return reported_files("generalization.csv", [wildcards.data])


def get_equivariance_metrics(wildcards):
    """metrics.json of the reported runs whose equivariance error is measured."""
    return equivariance_files("metrics.json")


def get_equivariance_errors(wildcards):
    """equivariance.npz of the same runs, in the same order."""
    return equivariance_files("equivariance.npz")


def get_selection_records(wildcards):
    """The selection records of every configuration of wildcards.data."""
    return selection_records([wildcards.data])


# --- the reproduction verdict and record (rules/reproduce.smk) ---
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


# --- targets of rule all ---
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
