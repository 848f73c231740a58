# The study's tables from the per-run outputs (formats: docs/formats.md).


rule runs_table:
    input:
        get_reported_metrics,
    output:
        "results/tables/runs.csv",
    log:
        "results/logs/tables/runs.log",
    conda:
        "../envs/train.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="runs",
    script:
        "../workflow/scripts/aggregate.py"


rule generalization_table:
    input:
        get_reported_generalization,
    output:
        "results/tables/generalization_{data}.csv",
    log:
        "results/logs/tables/generalization_{data}.log",
    conda:
        "../envs/train.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="generalization",
    script:
        "../workflow/scripts/aggregate.py"


rule equivariance_table:
    input:
        metrics=get_equivariance_metrics,
        errors=get_equivariance_errors,
    output:
        "results/tables/equivariance.csv",
    log:
        "results/logs/tables/equivariance.log",
    conda:
        "../envs/train.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="equivariance",
    script:
        "../workflow/scripts/aggregate.py"


rule selection_by_data:
    input:
        get_selection_records,
    output:
        "results/selection/{data}.csv",
    log:
        "results/logs/tables/selection_{data}.log",
    conda:
        "../envs/train.yaml"
    threads: res("light", "threads")
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
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="selection",
    script:
        "../workflow/scripts/aggregate.py"
