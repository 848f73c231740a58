# Figures and tables of the paper and the comparison with the paper's published results.
# Each artefact is its own target and depends only on the per-run files of the
# configurations it shows (input functions: rules/common_figures.smk). fig4_accuracy is the
# template of the figures drawn by plot_figure.py, fig7_slice_indices that of the pooling
# indices figures: the rules after each one change only their inputs, outputs and params.


rule fig4_accuracy:
    input:
        metrics=get_figure_files("fig4", "metrics.json"),
        selection=get_figure_selection("fig4"),
    output:
        pdf="results/figures/fig4_accuracy.pdf",
        png=report(
            "results/figures/fig4_accuracy.png",
            caption="../workflow/report/fig4_accuracy.rst",
            category="Figures",
            subcategory="Fig. 4",
        ),
    log:
        "results/logs/figures/fig4_accuracy.log",
    benchmark:
        "results/benchmarks/figures/fig4_accuracy.tsv"
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="fig4",
    script:
        "../workflow/scripts/plot_figure.py"


use rule fig4_accuracy as suppl_fig1_accuracy_boxes with:
    input:
        metrics=get_figure_files("suppl_fig1", "metrics.json"),
        selection=get_figure_selection("suppl_fig1"),
    output:
        pdf="results/figures/suppl_fig1_accuracy_boxes.pdf",
        png=report(
            "results/figures/suppl_fig1_accuracy_boxes.png",
            caption="../workflow/report/suppl_fig1_accuracy_boxes.rst",
            category="Supplementary figures",
            subcategory="Suppl. Fig. 1",
        ),
    log:
        "results/logs/figures/suppl_fig1_accuracy_boxes.log",
    benchmark:
        "results/benchmarks/figures/suppl_fig1_accuracy_boxes.tsv"
    params:
        kind="suppl_fig1",


use rule fig4_accuracy as fig5_generalization with:
    input:
        generalization=get_figure_files("fig5", "generalization.csv"),
        metrics=get_figure_files("fig5", "metrics.json"),
        selection=get_figure_selection("fig5"),
    output:
        pdf="results/figures/fig5_generalization_{data}.pdf",
        png=report(
            "results/figures/fig5_generalization_{data}.png",
            caption="../workflow/report/fig5_generalization.rst",
            category="Figures",
            subcategory="Fig. 5",
        ),
    log:
        "results/logs/figures/fig5_generalization_{data}.log",
    benchmark:
        "results/benchmarks/figures/fig5_generalization_{data}.tsv"
    wildcard_constraints:
        # any name: a dataset missing from the config gets a message naming it
        data="[A-Za-z0-9_]+",
    params:
        kind="fig5",


use rule fig4_accuracy as suppl_fig2_generalization with:
    input:
        generalization=get_figure_files("suppl_fig2", "generalization.csv"),
        metrics=get_figure_files("suppl_fig2", "metrics.json"),
        selection=get_figure_selection("suppl_fig2"),
    output:
        pdf="results/figures/suppl_fig2_generalization.pdf",
        png=report(
            "results/figures/suppl_fig2_generalization.png",
            caption="../workflow/report/suppl_fig2_generalization.rst",
            category="Supplementary figures",
            subcategory="Suppl. Fig. 2",
        ),
    log:
        "results/logs/figures/suppl_fig2_generalization.log",
    benchmark:
        "results/benchmarks/figures/suppl_fig2_generalization.tsv"
    params:
        kind="suppl_fig2",


use rule fig4_accuracy as fig6_equivariance with:
    input:
        metrics=get_figure_files("fig6", "metrics.json"),
        equivariance=get_figure_files("fig6", "equivariance.npz"),
        selection=get_figure_selection("fig6"),
    output:
        pdf="results/figures/fig6_equivariance_{data}.pdf",
        png=report(
            "results/figures/fig6_equivariance_{data}.png",
            caption="../workflow/report/fig6_equivariance.rst",
            category="Figures",
            subcategory="Fig. 6",
        ),
    log:
        "results/logs/figures/fig6_equivariance_{data}.log",
    benchmark:
        "results/benchmarks/figures/fig6_equivariance_{data}.tsv"
    wildcard_constraints:
        # any name: a dataset missing from the config gets a message naming it
        data="[A-Za-z0-9_]+",
    params:
        kind="fig6",
        input_scale=config["equivariance"]["input_scale"],


use rule fig4_accuracy as suppl_fig3_equivariance with:
    input:
        metrics=get_figure_files("suppl_fig3", "metrics.json"),
        equivariance=get_figure_files("suppl_fig3", "equivariance.npz"),
        selection=get_figure_selection("suppl_fig3"),
    output:
        pdf="results/figures/suppl_fig3_equivariance.pdf",
        png=report(
            "results/figures/suppl_fig3_equivariance.png",
            caption="../workflow/report/suppl_fig3_equivariance.rst",
            category="Supplementary figures",
            subcategory="Suppl. Fig. 3",
        ),
    log:
        "results/logs/figures/suppl_fig3_equivariance.log",
    benchmark:
        "results/benchmarks/figures/suppl_fig3_equivariance.tsv"
    params:
        kind="suppl_fig3",
        input_scale=config["equivariance"]["input_scale"],


use rule fig4_accuracy as compare_paper_generalization with:
    input:
        generalization=get_figure_files("compare_generalization", "generalization.csv"),
        metrics=get_figure_files("compare_generalization", "metrics.json"),
        selection=get_figure_selection("compare_generalization"),
    output:
        pdf="results/figures/compare_paper_generalization.pdf",
        png=report(
            "results/figures/compare_paper_generalization.png",
            caption="../workflow/report/compare_paper_generalization.rst",
            category="Comparison with the paper",
            subcategory="Scale generalisation",
        ),
    log:
        "results/logs/figures/compare_paper_generalization.log",
    benchmark:
        "results/benchmarks/figures/compare_paper_generalization.tsv"
    params:
        kind="compare_generalization",
        protocol_note=protocol_text(),


rule fig7_slice_indices:
    input:
        get_figure_indices("fig7"),
    output:
        pdf="results/figures/fig7_slice_indices.pdf",
        png=report(
            "results/figures/fig7_slice_indices.png",
            caption="../workflow/report/fig7_slice_indices.rst",
            category="Figures",
            subcategory="Fig. 7",
        ),
    log:
        "results/logs/figures/fig7_slice_indices.log",
    benchmark:
        "results/benchmarks/figures/fig7_slice_indices.tsv"
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="fig7",
        data=config["indices"]["data"],
        evaluation=config["indices"]["evaluation"],
    script:
        "../workflow/scripts/plot_indices.py"


use rule fig7_slice_indices as suppl_fig4_pixel_indices with:
    input:
        get_figure_indices("suppl_fig4"),
    output:
        pdf="results/figures/suppl_fig4_pixel_indices.pdf",
        png=report(
            "results/figures/suppl_fig4_pixel_indices.png",
            caption="../workflow/report/suppl_fig4_pixel_indices.rst",
            category="Supplementary figures",
            subcategory="Suppl. Fig. 4",
        ),
    log:
        "results/logs/figures/suppl_fig4_pixel_indices.log",
    benchmark:
        "results/benchmarks/figures/suppl_fig4_pixel_indices.tsv"
    params:
        kind="suppl_fig4",
        data=config["indices"]["data"],
        evaluation=config["indices"]["evaluation"],


rule table2_train_time:
    input:
        metrics=get_figure_files("table2", "metrics.json"),
        selection=get_figure_selection("table2"),
    output:
        csv=report(
            "results/tables/table2_train_time.csv",
            caption="../workflow/report/table2_train_time.rst",
            category="Tables",
            subcategory="Table 2",
        ),
        tex=report(
            "results/tables/table2_train_time.tex",
            caption="../workflow/report/table2_train_time.rst",
            category="Tables",
            subcategory="Table 2",
        ),
    log:
        "results/logs/figures/table2_train_time.log",
    benchmark:
        "results/benchmarks/figures/table2_train_time.tsv"
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        device=config["device"],
    script:
        "../workflow/scripts/plot_table2.py"


rule compare_paper:
    input:
        metrics=get_figure_files("compare", "metrics.json"),
        selection=get_figure_selection("compare"),
    output:
        csv=report(
            "results/tables/compare_paper.csv",
            caption="../workflow/report/compare_paper.rst",
            category="Comparison with the paper",
            subcategory="Test accuracy",
        ),
        md=report(
            "results/tables/compare_paper.md",
            caption="../workflow/report/compare_paper.rst",
            category="Comparison with the paper",
            subcategory="Test accuracy",
        ),
    log:
        "results/logs/figures/compare_paper.log",
    benchmark:
        "results/benchmarks/figures/compare_paper.tsv"
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="table",
        protocol=PROTOCOL,
        protocol_note=protocol_text(),
    script:
        "../workflow/scripts/plot_compare.py"


rule compare_paper_scatter:
    input:
        "results/tables/compare_paper.csv",
    output:
        pdf="results/figures/compare_paper_scatter.pdf",
        png=report(
            "results/figures/compare_paper_scatter.png",
            caption="../workflow/report/compare_paper_scatter.rst",
            category="Comparison with the paper",
            subcategory="Test accuracy",
        ),
    log:
        "results/logs/figures/compare_paper_scatter.log",
    benchmark:
        "results/benchmarks/figures/compare_paper_scatter.tsv"
    conda:
        "../envs/plots.yaml"
    threads: res("light", "threads")
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        kind="scatter",
        protocol_note=protocol_text(),
    script:
        "../workflow/scripts/plot_compare.py"
