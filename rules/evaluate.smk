# Metrics of the reported (chosen learning rate) runs, written next to each run.


rule generalization:
    input:
        data=data_file,
        metrics=RUN + "/metrics.json",
        model=RUN + "/model.pt",
    output:
        RUN + "/generalization.csv",
    params:
        run=lambda w, input: os.path.dirname(input.metrics),
        device=config["device"],
    log:
        RESULTS + "/logs/generalization/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/generalization/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu", 0),
    conda:
        "../envs/train.yaml"
    shell:
        "scalecnn evaluate generalization --run {params.run} --data {input.data}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"


rule equivariance:
    input:
        data=data_file,
        metrics=RUN + "/metrics.json",
        model=RUN + "/model.pt",
    output:
        RUN + "/equivariance.npz",
    params:
        run=lambda w, input: os.path.dirname(input.metrics),
        device=config["device"],
        input_scale=config["equivariance"]["input_scale"],
    log:
        RESULTS + "/logs/equivariance/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/equivariance/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu", 0),
    conda:
        "../envs/train.yaml"
    shell:
        "scalecnn evaluate equivariance --run {params.run} --data {input.data}"
        " --input-scale {params.input_scale} --device {params.device} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule best_run_indices:
    input:
        data=data_file,
        metrics=lambda w: [
            run + "/metrics.json" for run in chosen_runs(w.data, w.model, w.evaluation)
        ],
    output:
        RESULTS + "/indices/{data}/{model}/eval{evaluation}/best.npz",
    params:
        device=config["device"],
    log:
        RESULTS + "/logs/indices/{data}/{model}/eval{evaluation}.log",
    benchmark:
        RESULTS + "/benchmarks/indices/{data}/{model}/eval{evaluation}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu", 0),
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/best_run_indices.py"
