# The study's tables from the per-run outputs (formats: docs/formats.md).


rule runs_table:
    input:
        lambda w: reported_files("metrics.json"),
    output:
        "results/tables/runs.csv",
    log:
        "results/logs/tables/runs.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="runs",
    script:
        "../workflow/scripts/aggregate.py"


rule generalization_table:
    input:
        lambda w: reported_files("generalization.csv", [w.data]),
    output:
        "results/tables/generalization_{data}.csv",
    log:
        "results/logs/tables/generalization_{data}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="generalization",
    script:
        "../workflow/scripts/aggregate.py"


rule equivariance_table:
    input:
        metrics=lambda w: equivariance_files("metrics.json"),
        errors=lambda w: equivariance_files("equivariance.npz"),
    output:
        "results/tables/equivariance.csv",
    log:
        "results/logs/tables/equivariance.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="equivariance",
    script:
        "../workflow/scripts/aggregate.py"


rule selection_by_data:
    input:
        lambda w: selection_records([w.data]),
    output:
        "results/selection/{data}.csv",
    log:
        "results/logs/tables/selection_{data}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="selection",
    script:
        "../workflow/scripts/aggregate.py"


rule selection_table:
    input:
        selection_records(),
        expand("results/selection/{data}.csv", data=DATASETS),
    output:
        "results/tables/selection.csv",
    log:
        "results/logs/tables/selection.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="selection",
    script:
        "../workflow/scripts/aggregate.py"
