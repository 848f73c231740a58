"""Place results/data/{data}.npz: a verified hand-placed file, a regenerated emoji, or a
verified download from Zenodo."""

from pathlib import Path

from scalecnn.data import download_dataset, generate_emoji, verify_local_file
from scalecnn.io import atomic_path
from scalecnn.logs import log_to_file

log_to_file(snakemake.log[0])
name = snakemake.wildcards.data
out = Path(snakemake.output[0])
local = Path(snakemake.params.local)

if local.is_file():
    verify_local_file(local, name, api=snakemake.params.api)
    with atomic_path(out) as tmp:
        tmp.write_bytes(local.read_bytes())
elif snakemake.params.source == "generate":
    generate_emoji(out)
else:
    downloaded = download_dataset(name, out.parent, api=snakemake.params.api)
    if downloaded != out:
        downloaded.replace(out)
