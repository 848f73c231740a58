"""Place results/data/{data}.npz: a verified hand-placed file, a regenerated emoji, or a
verified download from Zenodo.

An expected failure (no network, a wrong md5, an invalid file, a full disk) ends the job
with its one message in the log and exit status 1, no traceback: tracebacks are for bugs.
"""

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from scalecnn.atomic import DiskFullError, atomic_path
from scalecnn.data import (
    DownloadError,
    STIRFormatError,
    download_dataset,
    generate_emoji,
    verify_local_file,
)
from scalecnn.logs import log_to_file


def prepare(name: str, out: Path, local: Path, source: str, api: str | None) -> None:
    """Verify and copy ``local`` if it is there, else regenerate or download ``name``."""
    if local.is_file():
        verify_local_file(local, name, api=api)
        with atomic_path(out) as tmp:
            shutil.copyfile(local, tmp)
    elif source == "generate":
        generate_emoji(out)
    else:
        download_dataset(name, out, api=api)


def main(smk: Any) -> int:
    """Run the job of Snakemake's ``smk`` object; the exit status (1: expected failure)."""
    log_to_file(smk.log[0])
    try:
        prepare(
            smk.wildcards.data,
            Path(smk.output[0]),
            Path(smk.params.local),
            smk.params.source,
            smk.params.api,
        )
    except (DownloadError, STIRFormatError, DiskFullError) as exc:
        logging.getLogger("scalecnn").error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake))
