"""One figure (params.kind: fig4, suppl_fig1, fig5, suppl_fig2, fig6, suppl_fig3,
compare_generalization) from the per-run files of the runs it shows."""

from scalecnn.logs import log_to_file
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import figure_from_files

log_to_file(snakemake.log[0])
fig = figure_from_files(
    snakemake.params.kind,
    metrics=snakemake.input.metrics,
    selection=snakemake.input.selection,
    generalization=snakemake.input.get("generalization", []),
    equivariance=snakemake.input.get("equivariance", []),
    data=snakemake.wildcards.get("data"),
    protocol=snakemake.params.get("protocol_note"),
)
save_figure_formats(fig, [snakemake.output.pdf, snakemake.output.png])
