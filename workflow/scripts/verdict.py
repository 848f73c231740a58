"""The reproduction verdict of one (data, evaluation): the verdict and per-run tables and
the figure, from the reported runs' metrics.json (scalecnn.reproduction)."""

from scalecnn.logs import log_to_file
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import figure_or_placeholder
from scalecnn.plots.reproduction import plot_reproduction
from scalecnn.reproduction import write_verdict

log_to_file(snakemake.log[0])
data, evaluation = snakemake.wildcards.data, int(snakemake.wildcards.evaluation)
table, runs = write_verdict(
    snakemake.input.metrics, data, evaluation, snakemake.output.csv, snakemake.output.runs
)
fig = figure_or_placeholder(
    f"Reproduction: {data}, evaluation {evaluation}",
    plot_reproduction,
    table,
    runs,
    data=data,
    evaluation=evaluation,
    note=snakemake.params.note,
)
save_figure_formats(fig, [snakemake.output.pdf, snakemake.output.png])
