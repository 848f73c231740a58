# The study's tables from the per-run outputs (formats: docs/formats.md).


rule runs_table:
    input:
        lambda w: [run + "/metrics.json" for run in reported_runs()],
    output:
        RESULTS + "/tables/runs.csv",
    params:
        kind="runs",
    log:
        RESULTS + "/logs/tables/runs.log",
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule generalization_table:
    input:
        lambda w: [run + "/generalization.csv" for run in reported_runs([w.data])],
    output:
        RESULTS + "/tables/generalization_{data}.csv",
    params:
        kind="generalization",
    log:
        RESULTS + "/logs/tables/generalization_{data}.log",
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule equivariance_table:
    input:
        metrics=lambda w: [
            run + "/metrics.json"
            for d, m, e in equivariance_configurations()
            for run in chosen_runs(d, m, e)
        ],
        errors=lambda w: [
            run + "/equivariance.npz"
            for d, m, e in equivariance_configurations()
            for run in chosen_runs(d, m, e)
        ],
    output:
        RESULTS + "/tables/equivariance.csv",
    params:
        kind="equivariance",
    log:
        RESULTS + "/logs/tables/equivariance.log",
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule selection_by_data:
    input:
        lambda w: [
            SELECTION.format(data=d, model=m, evaluation=e)
            for d, m, e in configurations([w.data])
        ],
    output:
        RESULTS + "/selection/{data}.csv",
    params:
        kind="selection",
    log:
        RESULTS + "/logs/tables/selection_{data}.log",
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule selection_table:
    input:
        [
            SELECTION.format(data=d, model=m, evaluation=e)
            for d, m, e in configurations()
        ],
        expand(RESULTS + "/selection/{data}.csv", data=DATASETS),
    output:
        RESULTS + "/tables/selection.csv",
    params:
        kind="selection",
    log:
        RESULTS + "/logs/tables/selection.log",
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/aggregate.py"
