"""The reproduction record docs/reproduction.md and its tables and figures (scalecnn.record)."""

from scalecnn.logs import log_to_file
from scalecnn.record import write_record

log_to_file(snakemake.log[0])
notes = snakemake.input.notes
write_record(
    md=snakemake.output.md,
    pairs=snakemake.params.pairs,
    verdict_csvs=snakemake.input.csvs,
    runs_csvs=snakemake.input.runs,
    pngs=snakemake.input.pngs,
    out_csvs=snakemake.output.csvs,
    out_runs_csvs=snakemake.output.runs,
    out_pngs=snakemake.output.pngs,
    compare_png=snakemake.input.compare,
    out_compare_png=snakemake.output.compare,
    protocol=snakemake.params.protocol,
    bench_dir=snakemake.params.bench_dir,
    notes=notes[0] if notes else None,
    repo=snakemake.params.repo,
    configfile=snakemake.params.configfile,
    threads=snakemake.params.threads,
)
