"""Place results/data/{data}.npz: a verified hand-placed file, a regenerated emoji, or a
verified download from Zenodo."""

import shutil
from pathlib import Path

from scalecnn.atomic import atomic_path
from scalecnn.data import download_dataset, generate_emoji, verify_local_file
from scalecnn.logs import log_to_file

log_to_file(snakemake.log[0])
name = snakemake.wildcards.data
out = Path(snakemake.output[0])
local = Path(snakemake.params.local)

if local.is_file():
    verify_local_file(local, name, api=snakemake.params.api)
    with atomic_path(out) as tmp:
        shutil.copyfile(local, tmp)
elif snakemake.params.source == "generate":
    generate_emoji(out)
else:
    download_dataset(name, out, api=snakemake.params.api)
