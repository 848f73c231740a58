# Trainings: selection seeds at every learning rate, the selection checkpoint,
# then the chosen rate's remaining seeds (requested through chosen_runs()). For a model in
# paper_lr_models the checkpoint has no selection runs and records the paper's rate.


rule train:
    input:
        data=get_data_file,
        basis=get_disco_basis,
    output:
        metrics=f"{RUN}/metrics.json",
        history=f"{RUN}/history.csv",
        model=f"{RUN}/model.pt",
        predictions=f"{RUN}/predictions.npy",
    log:
        f"results/logs/train/{RUN_ID}.log",
    benchmark:
        f"results/benchmarks/train/{RUN_ID}.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=get_train_runtime,
        gpu=res("train", "gpu"),
    params:
        out=get_run_dir,
        kernel_size=config["kernel_size"],
        interpolation=config["interpolation"],
        batch_size=config["batch_size"],
        max_epochs=config["max_epochs"],
        patience=config["patience"],
        device=config["device"],
        extra=get_train_options,
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
        SELECTION,
    log:
        "results/logs/selection/{data}/{model}/eval{evaluation}.log",
    conda:
        "../envs/train.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        source=get_lr_source,
    script:
        "../workflow/scripts/select_lr.py"
