# The finished runs in an MLflow tracking store (config key mlflow, off by default; README,
# "The runs in MLflow"). Target mlflow syncs after the config's trainings and selections:
#   snakemake --cores 1 mlflow --configfile config/quick.yaml --config 'mlflow={enabled: true}'
# The command scans every finished run under results/runs/ (those of other configs too), is
# idempotent and incremental (scalecnn.tracking). The store itself is not an output (a rerun
# must not delete it); results/mlflow/synced.json records the counts of the last sync.
# Requesting target mlflow while mlflow.enabled is false stops with a message naming the key.


include: "mlflow_inputs.smk"


rule mlflow_sync:
    input:
        get_mlflow_inputs,
    output:
        MLFLOW_SUMMARY,
    log:
        "results/logs/mlflow/sync.log",
    localrule: True
    conda:
        "../envs/mlflow.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        uri=MLFLOW["tracking_uri"],
        experiment=MLFLOW["experiment"],
        artifacts=MLFLOW["artifacts"],
    shell:
        "scalecnn mlflow-sync results --tracking-uri {params.uri:q}"
        " --experiment {params.experiment:q} --artifacts {params.artifacts}"
        " --summary {output:q} > {log:q} 2>&1"


rule mlflow:
    input:
        MLFLOW_SUMMARY,
