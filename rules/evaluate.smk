# Metrics of the reported (chosen learning rate) runs, written next to each run.


rule generalization:
    input:
        data=data_file,
        metrics="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/metrics.json",
        model="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/model.pt",
    output:
        "results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/generalization.csv",
    log:
        "results/logs/generalization/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.log",
    benchmark:
        "results/benchmarks/generalization/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=get_evaluate_runtime,
        gpu=res("evaluate", "gpu", 0),
    params:
        run=lambda w, input: os.path.dirname(input.metrics),
        device=config["device"],
    shell:
        "scalecnn evaluate generalization --run {params.run} --data {input.data}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"


rule equivariance:
    input:
        data=data_file,
        metrics="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/metrics.json",
        model="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/model.pt",
    output:
        "results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/equivariance.npz",
    log:
        "results/logs/equivariance/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.log",
    benchmark:
        "results/benchmarks/equivariance/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=get_evaluate_runtime,
        gpu=res("evaluate", "gpu", 0),
    params:
        run=lambda w, input: os.path.dirname(input.metrics),
        device=config["device"],
        input_scale=config["equivariance"]["input_scale"],
    shell:
        "scalecnn evaluate equivariance --run {params.run} --data {input.data}"
        " --input-scale {params.input_scale} --device {params.device} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule best_run_indices:
    input:
        data=data_file,
        metrics=best_run_candidates,
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
        gpu=res("evaluate", "gpu", 0),
    params:
        device=config["device"],
    script:
        "../workflow/scripts/best_run_indices.py"
