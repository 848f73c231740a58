"""Write one of the study's tables (params.kind) from per-run outputs."""

from scalecnn.aggregate import write_table
from scalecnn.logs import log_to_file

log_to_file(snakemake.log[0])
if snakemake.params.kind == "equivariance":
    inputs = list(zip(snakemake.input.metrics, snakemake.input.errors))
else:
    inputs = list(snakemake.input)
write_table(snakemake.params.kind, inputs, snakemake.output[0])
