"""Helpers for running the workflow in a temporary working directory."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"


def snakemake_command(workdir: str | Path, *args: object) -> list[str]:
    """The command line that runs snakemake on the repository's Snakefile inside ``workdir``."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        *map(str, args),
    ]


def snakemake(workdir, *args, check=True, timeout=1800):
    """Run snakemake on the repository's Snakefile inside ``workdir``."""
    cmd = snakemake_command(workdir, *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse the first 'Job stats' table of snakemake's output."""
    match = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\n\n", output, re.S)
    assert match, f"no job stats in output:\n{output[-3000:]}"
    counts = {}
    for line in match.group(1).splitlines():
        name, count = line.split()
        counts[name] = int(count)
    return counts


def tiny_study(workdir, **overrides):
    """A minimal study on a synthetic STIR file placed by hand in ``data/``.

    Returns the path of its config file. The hand-placed file is verified and
    copied by rule prepare_data, like a user's pre-downloaded file.
    """
    import yaml

    from scalecnn.data import write_synthetic_stir

    workdir = Path(workdir)
    write_synthetic_stir(workdir / "data" / "emoji.npz", num_classes=3, num_instances=2)
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    cfg.update(
        datasets={"emoji": {"source": "zenodo", "repetitions": 1}},
        models=["standard"],
        evaluations=[4],
        learning_rates=[0.001],
        selection_seeds=1,
        max_epochs=3,
    )
    cfg.update(overrides)
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
