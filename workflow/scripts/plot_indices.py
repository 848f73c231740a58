"""Fig. 7 / Suppl. Fig. 4 (params.kind) from the best run's scale-pooling indices."""

from scalecnn.logs import log_to_file
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import indices_figure

log_to_file(snakemake.log[0])
fig = indices_figure(snakemake.params.kind, snakemake.input[0])
save_figure_formats(fig, [snakemake.output.pdf, snakemake.output.png])
