# STIR files: verify a hand-placed file, regenerate emoji offline, or download from Zenodo.


rule prepare_data:
    output:
        "results/data/{data}.npz",
    log:
        "results/logs/data/{data}.log",
    benchmark:
        "results/benchmarks/data/{data}.tsv"
    conda:
        "../envs/data.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        source=get_data_source,
        local=get_local_data_file,
        api=config.get("zenodo_api"),
    script:
        "../workflow/scripts/prepare_data.py"
