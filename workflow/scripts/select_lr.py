"""Choose the learning rate of one (data, model, evaluation) from its selection runs."""

import logging

from scalecnn.logs import log_to_file
from scalecnn.selection import write_selection

log_to_file(snakemake.log[0])
record = write_selection(snakemake.input, snakemake.output[0])
logging.getLogger("select_lr").info(
    "%s %s eval%s: medians %s -> lr %s",
    record["data"],
    record["model"],
    record["evaluation"],
    record["medians"],
    record["chosen_lr"],
)
