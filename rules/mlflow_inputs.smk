# Config and input function of rules/mlflow.smk (config key mlflow; README, "The runs in
# MLflow"). No rule logic here.

MLFLOW_DEFAULTS = {
    "enabled": False,
    "tracking_uri": "sqlite:///results/mlflow.db",
    "experiment": "scalecnn",
    "artifacts": "copy",
}
MLFLOW = {**MLFLOW_DEFAULTS, **config.get("mlflow", {})}
# --config 'mlflow={enabled: true}' passes the string "true" (the schema allows both)
MLFLOW_ENABLED = str(MLFLOW["enabled"]).lower() == "true"
MLFLOW_SUMMARY = "results/mlflow/synced.json"


def get_mlflow_inputs(wildcards):
    """The selection records and reported runs' metrics.json of the config (the sync runs
    after them); stops naming config key mlflow.enabled when the sync is off."""
    if not MLFLOW_ENABLED:
        raise ValueError(
            "target mlflow: the MLflow sync is off (config key mlflow.enabled is false); "
            "set it, e.g. --config 'mlflow={enabled: true}', or run scalecnn mlflow-sync "
            "results"
        )
    return selection_records() + reported_files("metrics.json")
