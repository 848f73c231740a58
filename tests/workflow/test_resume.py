"""Faults during a workflow run: a killed training job resumes exactly; locks; no partial files."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from wfutil import REPO, SNAKEFILE, job_counts, snakemake, snakemake_command, tiny_study

from scalecnn.training import CHECKPOINT_NAME, KILL_HOOK_ENV

RUN = "results/runs/emoji/standard/eval4/lr0.001/seed1"
TIMING = {"train_time_last_epoch", "train_time_mean"}


def _metrics(workdir):
    m = json.loads((workdir / RUN / "metrics.json").read_text())
    m = {k: v for k, v in m.items() if k not in TIMING}
    m["history"].pop("train_time")
    return m


@pytest.mark.slow
def test_killed_training_job_resumes_and_matches_an_uninterrupted_run(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    snakemake(ref, "--cores", "1", "--configfile", tiny_study(ref))
    cfg = tiny_study(run)
    # the train job SIGKILLs itself right after epoch 2's checkpoint
    os.environ[KILL_HOOK_ENV] = "2"
    try:
        failed = snakemake(run, "--cores", "1", "--configfile", cfg, check=False)
    finally:
        del os.environ[KILL_HOOK_ENV]
    assert failed.returncode != 0
    assert (run / RUN / CHECKPOINT_NAME).is_file()
    assert not (run / RUN / "metrics.json").exists()
    snakemake(run, "--cores", "1", "--configfile", cfg, "--rerun-incomplete")
    log = (run / "results/logs/train/emoji/standard/eval4/lr0.001/seed1.log").read_text()
    assert "resuming" in log and "after epoch 2" in log
    want, got = _metrics(ref), _metrics(run)
    assert (want.pop("resumes"), got.pop("resumes")) == (0, 1)  # counted in metrics.json
    assert want == got
    assert (run / RUN / "model.pt").read_bytes() == (
        ref / RUN / "model.pt"
    ).read_bytes() or _same_weights(ref / RUN / "model.pt", run / RUN / "model.pt")
    assert not (run / RUN / CHECKPOINT_NAME).exists()
    assert (run / "results/tables/runs.csv").is_file()


def _same_weights(a, b):
    import torch

    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_second_invocation_on_the_same_directory_is_refused(tmp_path):
    cfg = tiny_study(tmp_path, max_epochs=200, patience=200)
    cmd = snakemake_command(tmp_path, "--cores", "1", "--configfile", cfg)
    first = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        ckpt = tmp_path / RUN / CHECKPOINT_NAME  # written after the first epoch
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline:
            time.sleep(0.5)
        assert ckpt.exists(), "the first invocation never finished an epoch"
        second = snakemake(tmp_path, "--cores", "1", "--configfile", cfg, check=False)
        assert second.returncode != 0
        assert "lock" in (second.stdout + second.stderr).lower()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # after the crash: --unlock releases the lock, and the killed job left none of its
    # outputs half-written: at most its checkpoint (hidden) and hidden temporary files
    snakemake(tmp_path, "--unlock", "--cores", "1", "--configfile", cfg)
    left = sorted(p.name for p in (tmp_path / RUN).iterdir())
    assert CHECKPOINT_NAME in left
    assert all(name.startswith(".") for name in left), left
    for output in ("metrics.json", "history.csv", "model.pt", "predictions.npy"):
        assert not (tmp_path / RUN / output).exists()


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_corrupt_hand_placed_data_file_stops_with_a_clear_error(tmp_path, kind):
    cfg = tiny_study(tmp_path)
    path = tmp_path / "data" / "emoji.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if kind == "truncated" else b"not a zip file" * 10)
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", cfg, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/data/emoji.log").read_text()
    assert "emoji.npz" in log
    assert not (tmp_path / "results/data/emoji.npz").exists()


def _workflow_copy(dest):
    """The workflow's own files (Snakefile, rules, scripts, schemas) copied into ``dest``
    with new file times, as a fresh clone of the repository has them."""
    dest.mkdir()
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    for folder in ("rules", "workflow", "envs"):
        shutil.copytree(REPO / folder, dest / folder, copy_function=shutil.copy)
    return dest / "Snakefile"


@pytest.mark.slow
def test_fresh_clone_keeps_the_runs_with_the_documented_triggers(tmp_path):
    """docs/reliability.md: Snakemake's code trigger compares a script rule's script file
    time with its outputs, so a finished study run by a fresh clone of the workflow (its
    scripts newer than every output) looks changed: it would prepare the data again and
    retrain. With ``--rerun-triggers mtime params input software-env`` nothing runs."""
    work = tmp_path / "work"
    cfg = tiny_study(work, max_epochs=1)
    target = f"{RUN}/metrics.json"

    def run(snakefile, *args):
        cmd = snakemake_command(work, target, "--configfile", cfg, *args)
        cmd[cmd.index(str(SNAKEFILE))] = str(snakefile)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    first = _workflow_copy(tmp_path / "first")
    run(first, "--cores", "1")
    assert "Nothing to be done" in run(first, "-n")
    fresh = _workflow_copy(tmp_path / "fresh")  # cloned after the study finished
    plain = run(fresh, "-n")
    assert "Code has changed since last execution" in plain
    assert {"prepare_data", "train"} <= set(job_counts(plain))
    kept = run(fresh, "-n", "--rerun-triggers", "mtime", "params", "input", "software-env")
    assert "Nothing to be done" in kept
