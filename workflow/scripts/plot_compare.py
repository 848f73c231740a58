"""Comparison with the paper: the table (params.kind 'table', from the per-run metrics)
or its scatter plot (params.kind 'scatter', from that table)."""

from scalecnn.logs import log_to_file
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import compare_scatter_from_csv, write_compare_files

log_to_file(snakemake.log[0])
if snakemake.params.kind == "table":
    write_compare_files(
        snakemake.input.metrics,
        snakemake.output.csv,
        snakemake.output.md,
        selection=snakemake.input.selection,
        protocol=snakemake.params.protocol,
    )
else:
    fig = compare_scatter_from_csv(snakemake.input[0])
    save_figure_formats(fig, [snakemake.output.pdf, snakemake.output.png])
