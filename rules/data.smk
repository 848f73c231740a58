# STIR files: verify a hand-placed file, regenerate emoji offline, or download from Zenodo.


rule prepare_data:
    output:
        RESULTS + "/data/{data}.npz",
    params:
        source=lambda w: config["datasets"][w.data]["source"],
        local=lambda w: f"{config['data_dir']}/{w.data}.npz",
        api=config.get("zenodo_api"),
    log:
        RESULTS + "/logs/data/{data}.log",
    benchmark:
        RESULTS + "/benchmarks/data/{data}.tsv"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/prepare_data.py"
