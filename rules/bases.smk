# The DISCO basis of the disco model, computed once by optimisation.


rule disco_basis:
    output:
        basis="results/bases/disco_basis.pt",
        report="results/bases/disco_basis_report.json",
    log:
        "results/logs/bases/disco_basis.log",
    benchmark:
        "results/benchmarks/bases/disco_basis.tsv"
    conda:
        "../envs/train.yaml"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=get_train_runtime,
    params:
        scales=get_disco_scales,
        epochs=config["disco"]["epochs"],
        steps=config["disco"]["steps_per_epoch"],
        batch_size=config["disco"]["batch_size"],
        image_size=config["disco"]["image_size"],
        seed=config["disco"]["seed"],
        lr=config["disco"]["lr"],
        init_std=config["disco"]["init_std"],
    shell:
        "scalecnn disco-basis --kernel-size 15 --effective-size 7 --scales {params.scales}"
        " --epochs {params.epochs} --steps-per-epoch {params.steps}"
        " --batch-size {params.batch_size} --image-size {params.image_size}"
        " --lr {params.lr} --init-std {params.init_std}"
        " --seed {params.seed} --threads {threads} --out {output.basis}"
        " --report {output.report} > {log} 2>&1"
