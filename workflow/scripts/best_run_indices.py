"""Scale-pooling indices of the reported run with the highest test accuracy."""

from scalecnn.evaluation import write_best_run_indices
from scalecnn.logs import log_to_file

log_to_file(snakemake.log[0])
write_best_run_indices(
    snakemake.input.metrics, snakemake.input.data, snakemake.output[0], snakemake.params.device
)
