# Reproduction verdict (ours vs the paper per model, scalecnn.reproduction) and the record
# docs/reproduction.md (rule record, not part of rule all: it writes into docs/).


rule verdict:
    input:
        metrics=get_verdict_metrics,
    output:
        csv="results/reproduction/{data}_eval{evaluation}.csv",
        runs="results/reproduction/{data}_eval{evaluation}_runs.csv",
        pdf="results/reproduction/{data}_eval{evaluation}.pdf",
        png=report(
            "results/reproduction/{data}_eval{evaluation}.png",
            caption="../workflow/report/verdict.rst",
            category="Comparison with the paper",
            subcategory="Reproduction verdict",
        ),
    log:
        "results/logs/reproduction/verdict_{data}_eval{evaluation}.log",
    benchmark:
        "results/benchmarks/reproduction/verdict_{data}_eval{evaluation}.tsv"
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        note="",
    script:
        "../workflow/scripts/verdict.py"
