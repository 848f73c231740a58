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
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        note=get_verdict_note,
    script:
        "../workflow/scripts/verdict.py"


rule record:
    input:
        csvs=record_files("results/reproduction", ".csv"),
        runs=record_files("results/reproduction", "_runs.csv"),
        pngs=record_files("results/reproduction", ".png"),
        compare="results/figures/compare_paper_generalization.png",
        notes=get_record_notes,
    output:
        md="docs/reproduction.md",
        csvs=record_files("docs/reproduction", ".csv"),
        runs=record_files("docs/reproduction", "_runs.csv"),
        pngs=record_files("docs/reproduction", ".png"),
        compare="docs/reproduction/compare_paper_generalization.png",
    log:
        "results/logs/reproduction/record.log",
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        pairs=RECORD_PAIRS,
        protocol=PROTOCOL,
        bench_dir="results/benchmarks",
        repo=workflow.basedir,
        configfile=config_name(),
        threads=res("train", "threads"),
    script:
        "../workflow/scripts/record.py"
