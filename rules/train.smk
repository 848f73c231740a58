# Trainings: selection seeds at every learning rate, the selection checkpoint,
# then the chosen rate's remaining seeds (requested through chosen_runs()). For a model in
# paper_lr_models the checkpoint has no selection runs and records the paper's rate.


rule train:
    input:
        data=data_file,
        basis=basis_file,
    output:
        metrics="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/metrics.json",
        history="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/history.csv",
        model="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/model.pt",
        predictions="results/runs/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}/predictions.npy",
    log:
        "results/logs/train/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{data}/{model}/eval{evaluation}/lr{lr}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=get_train_runtime,
        gpu=res("train", "gpu", 0),
    params:
        out=lambda w, output: os.path.dirname(output.metrics),
        kernel_size=config["kernel_size"],
        interpolation=config["interpolation"],
        batch_size=config["batch_size"],
        max_epochs=config["max_epochs"],
        patience=config["patience"],
        device=config["device"],
        extra=lambda w, input: " ".join(
            (["--reshuffle"] if config["reshuffle"] else [])
            + [f"--basis {b}" for b in input.basis]
            + [f"--plugin {p}" for p in config.get("plugins", [])]
        ),
    shell:
        "scalecnn train --model {wildcards.model} --data {input.data}"
        " --evaluation {wildcards.evaluation} --lr {wildcards.lr} --seed {wildcards.seed}"
        " --kernel-size {params.kernel_size} --interpolation {params.interpolation}"
        " --batch-size {params.batch_size} --max-epochs {params.max_epochs}"
        " --patience {params.patience} --device {params.device} --threads {threads}"
        " {params.extra} --out {params.out} > {log} 2>&1"


checkpoint select_lr:
    input:
        get_selection_runs,
    output:
        "results/selection/{data}/{model}/eval{evaluation}.json",
    log:
        "results/logs/selection/{data}/{model}/eval{evaluation}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        source=get_lr_source,
    script:
        "../workflow/scripts/select_lr.py"
