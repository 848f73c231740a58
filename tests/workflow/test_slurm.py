"""The Slurm profiles: dry runs (fast), and a tiny study on a real single-node Slurm cluster
started by scripts/start_local_slurm.sh (slow; needs root and apt-get, or a running cluster).

Outside CI a missing prerequisite skips the Slurm test with the reason; with CI=true it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from wfutil import REPO, SNAKEFILE

QUICK = REPO / "config" / "quick.yaml"
PROFILE = REPO / "profiles" / "slurm"
GPU_PROFILE = REPO / "profiles" / "slurm-gpu"
START_SLURM = REPO / "scripts" / "start_local_slurm.sh"
# The local cluster is one node with this machine's CPUs (2 in CI), and some tests need two
# trainings running side by side: every test that submits to it runs on the same
# pytest-xdist worker, one after the other (pyproject addopts: --dist loadgroup).
SLURM_GROUP = pytest.mark.xdist_group("slurm")
TABLES = [
    "results/tables/runs.csv",
    "results/tables/selection.csv",
    "results/tables/generalization_emoji.csv",
    "results/tables/equivariance.csv",
]
RUN = "results/runs/emoji/standard/eval4/lr0.001/seed1"
# Dry runs stop at the selection checkpoint: name the evaluations' outputs too.
DRY_TARGETS = [*TABLES, f"{RUN}/generalization.csv", f"{RUN}/equivariance.npz"]
# The jobs of the tables above for the tiny config (no disco basis, no scale indices).
SLURM_RULES = {
    "prepare_data",
    "train",
    "select_lr",
    "generalization",
    "equivariance",
    "runs_table",
    "selection_by_data",
    "selection_table",
    "generalization_table",
    "equivariance_table",
}


def tiny_config(directory: Path) -> Path:
    """config/quick.yaml cut to one training: standard, All2All, lr 1e-3, one seed, 1 epoch."""
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(
        models=["standard"],
        evaluations=[4],
        learning_rates=[0.001],
        selection_seeds=1,
        max_epochs=1,
    )
    for spec in cfg["datasets"].values():
        spec["repetitions"] = 1
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake_cmd(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]


def job_env(**extra) -> dict[str, str]:
    """This environment, its bin first on PATH (Slurm jobs run `python -m snakemake` and
    `scalecnn` from it), without Slurm job variables (we are the submitting side)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    env.pop("SCALECNN_SLURM_PARTITION", None)
    env.pop("SCALECNN_SLURM_GPU_PARTITION", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def run(cmd, env, timeout):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{output[-6000:]}"
    return output


def job_blocks(output: str) -> dict[str, str]:
    """Dry-run output: rule name -> its block (resources, shell command, ...)."""
    blocks = {}
    for m in re.finditer(
        r"^(?:local)?(?:rule|checkpoint) (\w+):\n(.*?)(?=\n\n|\Z)", output, re.M | re.S
    ):
        blocks.setdefault(m.group(1), m.group(2))
    return blocks


def resources(block: str) -> dict[str, str]:
    line = re.search(r"resources: (.*)", block).group(1)
    return dict(item.split("=", 1) for item in line.split(", "))


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"the Slurm test must run in CI but cannot: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def slurm_plugin():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")


# --- dry runs: what the profiles ask for ---------------------------------------------------
# Snakemake (>= 9.15) evaluates a profile's string-valued resources (the partition,
# `cpus_per_task: threads`, `"720 * attempt"`) only when a job is submitted: a dry run prints
# them as <TBD>. Those are read from the profile as Snakemake reads it (YTE, with the
# environment); the numbers the dry run resolves are read from the dry run.
def profile(path: Path, **env: str) -> dict:
    """The profile's settings as Snakemake sees them with environment ``env`` (YTE)."""
    import yte

    saved = {k: os.environ.get(k) for k in (*env, *PARTITION_VARS)}
    try:
        for key in PARTITION_VARS:
            os.environ.pop(key, None)
        os.environ.update(env)
        with open(path / "config.yaml") as f:
            return yte.process_yaml(f)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


PARTITION_VARS = ("SCALECNN_SLURM_PARTITION", "SCALECNN_SLURM_GPU_PARTITION", "SBATCH_PARTITION")


def test_slurm_profile_sets_partition_and_resources(tmp_path):
    prof = profile(PROFILE, SCALECNN_SLURM_PARTITION="mypart")
    assert prof["executor"] == "slurm"
    assert prof["default-resources"]["slurm_partition"] == "mypart"
    assert prof["default-resources"]["cpus_per_task"] == "threads"
    assert prof["set-resources"]["train"]["runtime"] == "720 * attempt"
    # Slurm's own variable is the fallback; with neither, no partition is set and the
    # plugin uses the cluster's default partition
    fallback = profile(PROFILE, SBATCH_PARTITION="theirs")
    assert fallback["default-resources"]["slurm_partition"] == "theirs"
    assert "slurm_partition" not in profile(PROFILE)["default-resources"]

    config = tiny_config(tmp_path)
    cmd = [*snakemake_cmd(tmp_path / "w"), "--profile", PROFILE, "--configfile", config]
    cmd += ["-n", "-p", *DRY_TARGETS]
    out = run(list(map(str, cmd)), job_env(SCALECNN_SLURM_PARTITION="mypart"), 300)
    blocks = job_blocks(out)
    assert set(blocks) >= SLURM_RULES, sorted(blocks)
    assert resources(blocks["train"])["mem_mb"] == "8000"  # the profile's set-resources
    assert resources(blocks["generalization"])["mem_mb"] == "8000"
    assert resources(blocks["select_lr"])["mem_mb"] == "1000"  # from the config file
    assert "--device auto" in blocks["train"]


def test_slurm_gpu_profile_asks_one_gpu_and_cuda(tmp_path):
    prof = profile(GPU_PROFILE, SCALECNN_SLURM_PARTITION="cpu", SCALECNN_SLURM_GPU_PARTITION="gpu")
    for rule in ("train", "generalization", "equivariance"):
        assert prof["set-resources"][rule]["slurm_partition"] == "gpu", rule
    assert prof["default-resources"]["slurm_partition"] == "cpu"  # e.g. prepare_data
    # without a GPU partition, the GPU jobs go where the CPU jobs go
    same = profile(GPU_PROFILE, SCALECNN_SLURM_PARTITION="cpu")
    assert same["set-resources"]["train"]["slurm_partition"] == "cpu"

    config = tiny_config(tmp_path)
    cmd = [*snakemake_cmd(tmp_path / "w"), "--profile", GPU_PROFILE, "--configfile", config]
    cmd += ["-n", "-p", *DRY_TARGETS]
    env = job_env(SCALECNN_SLURM_PARTITION="cpu", SCALECNN_SLURM_GPU_PARTITION="gpu")
    blocks = job_blocks(run(list(map(str, cmd)), env, 300))
    for rule in ("train", "generalization", "equivariance"):
        res = resources(blocks[rule])
        assert (res["gpu"], res["mem_mb"]) == ("1", "16000"), (rule, res)
        assert "--device cuda" in blocks[rule], blocks[rule]
    assert "gpu" not in resources(blocks["prepare_data"])


# --- a real Slurm cluster ------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm_partition():
    """Start (or find running) the local single-node cluster; its partition."""
    if not sys.platform.startswith("linux"):
        _unavailable("a local Slurm cluster needs Linux")
    if os.geteuid() != 0:
        _unavailable("scripts/start_local_slurm.sh needs root (installs Slurm, starts daemons)")
    if not (shutil.which("apt-get") or shutil.which("slurmctld")):
        _unavailable("neither apt-get nor Slurm is available")
    try:
        proc = subprocess.run(
            ["bash", str(START_SLURM)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        _unavailable("scripts/start_local_slurm.sh did not finish in 15 minutes")
    print(proc.stdout, proc.stderr, sep="\n")
    if proc.returncode != 0:
        _unavailable(
            f"scripts/start_local_slurm.sh failed ({proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return re.search(r"^partition=(\S+)$", proc.stdout, re.M).group(1)


def _read_table(path: Path) -> pd.DataFrame:
    """A table without its timing columns (train_time_*, metrics.train_time_*)."""
    df = pd.read_csv(path)
    return df.drop(columns=[c for c in df.columns if "time" in c])


@pytest.mark.slow
@SLURM_GROUP
@pytest.mark.timeout(1800)
def test_tiny_study_on_slurm_equals_a_local_run(tmp_path, slurm_partition):
    config = tiny_config(tmp_path)
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    env = job_env(SCALECNN_SLURM_PARTITION=slurm_partition)

    # the local reference run, alongside (the Slurm run mostly waits)
    local_cmd = [*snakemake_cmd(local_dir), *TABLES, "--cores", "2", "--configfile", config]
    local = subprocess.Popen(
        list(map(str, local_cmd)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=job_env(),
    )
    start = time.monotonic()
    slurm_cmd = [
        *snakemake_cmd(slurm_dir),
        *TABLES,
        "--profile",
        PROFILE,
        "--configfile",
        config,
        # faster first status check for this tiny run (MinJobAge 600 s >= 3 x 3 s)
        "--slurm-init-seconds-before-status-checks",
        "3",
        "--slurm-keep-successful-logs",
    ]
    try:
        out = run(list(map(str, slurm_cmd)), env, timeout=1500)
    finally:
        local_out = local.communicate(timeout=1500)[0]
    print(f"Slurm run: {time.monotonic() - start:.0f} s")
    assert local.returncode == 0, local_out[-6000:]

    # every job went through sbatch, none ran in this process
    assert "localrule" not in out, out[-6000:]
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out))
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    rules = set()
    log_dir = (slurm_dir / ".snakemake" / "slurm_logs").resolve()
    for job_id, log in submitted.items():
        log = Path(log).resolve()
        assert log.is_file() and log.is_relative_to(log_dir), log
        assert log.stem == job_id  # the log is named after the Slurm job
        rule = log.relative_to(log_dir).parts[0]
        rules.add(rule.removeprefix("rule_"))
        text = log.read_text()
        assert re.search(r"(rule|checkpoint) \w+:", text) and "100%) done" in text, text
    assert rules == SLURM_RULES, rules
    # ... and Slurm knows them: finished jobs of this run, kept for MinJobAge seconds
    queue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = dict(line.split("|") for line in queue.split())
    assert {j: states.get(j) for j in submitted} == {j: "COMPLETED" for j in submitted}

    # the same results as the local run (training is deterministic on the CPU)
    for table in TABLES:
        pd.testing.assert_frame_equal(
            _read_table(slurm_dir / table), _read_table(local_dir / table), check_exact=True
        )
    runs = pd.read_csv(slurm_dir / "results/tables/runs.csv")
    assert len(runs) == 1 and runs["status"].tolist() == ["ok"]
    np.testing.assert_array_equal(
        np.load(slurm_dir / RUN / "predictions.npy"), np.load(local_dir / RUN / "predictions.npy")
    )
