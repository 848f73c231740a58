"""Choose the learning rate of one (data, model, evaluation) from its selection runs, or
record the paper's rate (params.source == "paper", config key paper_lr_models)."""

import logging

from scalecnn.logs import log_to_file
from scalecnn.selection import SOURCE_PAPER, write_paper_selection, write_selection

log_to_file(snakemake.log[0])
w = snakemake.wildcards
if snakemake.params.source == SOURCE_PAPER:
    record = write_paper_selection(w.data, w.model, int(w.evaluation), snakemake.output[0])
else:
    record = write_selection(snakemake.input, snakemake.output[0])
logging.getLogger("select_lr").info(
    "%s %s eval%s: %s medians %s -> lr %s",
    record["data"],
    record["model"],
    record["evaluation"],
    record["source"],
    record["medians"],
    record["chosen_lr"],
)
