"""Table 2 (training time per epoch, Mid2Rest) from the per-run metrics."""

from scalecnn.logs import log_to_file
from scalecnn.plots.inputs import write_table2_files

log_to_file(snakemake.log[0])
write_table2_files(
    snakemake.input.metrics,
    snakemake.output.csv,
    snakemake.output.tex,
    selection=snakemake.input.selection,
)
