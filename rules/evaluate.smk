# Metrics of the reported (chosen learning rate) runs, written next to each run.


rule generalization:
    input:
        data=get_data_file,
        metrics=f"{RUN}/metrics.json",
        model=f"{RUN}/model.pt",
    output:
        f"{RUN}/generalization.csv",
    log:
        f"results/logs/generalization/{RUN_ID}.log",
    benchmark:
        f"results/benchmarks/generalization/{RUN_ID}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=get_evaluate_runtime,
        gpu=res("evaluate", "gpu"),
    params:
        run=get_evaluated_run,
        device=config["device"],
    shell:
        "scalecnn evaluate generalization --run {params.run} --data {input.data}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"


rule equivariance:
    input:
        data=get_data_file,
        metrics=f"{RUN}/metrics.json",
        model=f"{RUN}/model.pt",
    output:
        f"{RUN}/equivariance.npz",
    log:
        f"results/logs/equivariance/{RUN_ID}.log",
    benchmark:
        f"results/benchmarks/equivariance/{RUN_ID}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=get_evaluate_runtime,
        gpu=res("evaluate", "gpu"),
    params:
        run=get_evaluated_run,
        device=config["device"],
        input_scale=config["equivariance"]["input_scale"],
    shell:
        "scalecnn evaluate equivariance --run {params.run} --data {input.data}"
        " --input-scale {params.input_scale} --device {params.device} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule best_run_indices:
    input:
        data=get_data_file,
        metrics=get_best_run_candidates,
    output:
        "results/indices/{data}/{model}/eval{evaluation}/best.npz",
    log:
        "results/logs/indices/{data}/{model}/eval{evaluation}.log",
    benchmark:
        "results/benchmarks/indices/{data}/{model}/eval{evaluation}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=get_evaluate_runtime,
        gpu=res("evaluate", "gpu"),
    params:
        device=config["device"],
    script:
        "../workflow/scripts/best_run_indices.py"
