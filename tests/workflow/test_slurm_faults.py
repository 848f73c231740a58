"""Faults on a real single-node Slurm cluster (scripts/start_local_slurm.sh): a time limit, a
cancelled job and a dead Snakemake head process. Each ends in the same results as an
uninterrupted local run of the same seeds, with the trainings resumed from their checkpoints.

The trainings are tiny; ``SCALECNN_STEP_SLEEP`` (a test hook of scalecnn.training; it
changes no number of the run) stretches them to tens of seconds so that a one-minute time
limit or a ``scancel`` lands mid-run. Without root or apt-get these tests are skipped, with
CI=true they fail (as tests/workflow/test_slurm.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_slurm import (  # noqa: F401 (fixtures)
    PROFILE,
    SLURM_GROUP,
    job_env,
    slurm_partition,
    slurm_plugin,
    snakemake_cmd,
)
from wfutil import REPO, snakemake, tiny_study

from scalecnn.training import CHECKPOINT_NAME, SLOW_HOOK_ENV

RUN = "results/runs/emoji/standard/eval{evaluation}/lr0.001/seed{seed}"
LOG = "results/logs/train/emoji/standard/eval{evaluation}/lr0.001/seed{seed}.log"
TIMING = {"train_time_last_epoch", "train_time_mean"}
STOPPED = re.compile(r"stopped by SIGTERM after epoch (\d+), step (\d+); rerun resumes")
RESUMED = re.compile(r"resuming \S+ from the checkpoint after epoch (\d+)")


def _config(workdir: Path, **overrides) -> Path:
    """tiny_study (synthetic data, standard model, lr 1e-3) with no early stopping."""
    overrides.setdefault("patience", overrides["max_epochs"])
    return tiny_study(workdir, **overrides)


def _slurm_config(workdir: Path, **overrides) -> Path:
    """As _config, with the data already prepared (prepare_data copies the file; doing it
    here saves a Slurm job and its status queries)."""
    cfg = _config(workdir, **overrides)
    (workdir / "results" / "data").mkdir(parents=True)
    shutil.copy2(workdir / "data" / "emoji.npz", workdir / "results" / "data" / "emoji.npz")
    return cfg


def _reference(tmp_path: Path, targets: list[str], **overrides) -> subprocess.Popen:
    """The uninterrupted local run of the same config (no sleep: it changes no number)."""
    ref = tmp_path / "ref"
    cfg = _config(ref, **overrides)
    cmd = [*snakemake_cmd(ref), *targets, "--cores", "1", "--configfile", cfg]
    return subprocess.Popen(
        list(map(str, cmd)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=job_env(),
    )


def _slurm_cmd(workdir: Path, cfg: Path, targets: list[str], *extra: str) -> list[str]:
    cmd = [*snakemake_cmd(workdir), *targets, "--profile", PROFILE, "--configfile", cfg]
    # a fast first status query (MinJobAge 600 s >= 3 x 3 s); keep every job's Slurm log
    cmd += ["--slurm-init-seconds-before-status-checks", "3", "--slurm-keep-successful-logs"]
    return list(map(str, [*cmd, *extra]))


_STARTED: list[tuple[subprocess.Popen, Path]] = []


@pytest.fixture(autouse=True)
def _clean_up_slurm_runs():
    """After each test: end the Snakemake processes it started and cancel their Slurm jobs
    (a failed test must not leave jobs that hold the node's CPUs)."""
    yield
    while _STARTED:
        proc, out = _STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for run_id in set(re.findall(r"SLURM run ID: (\S+)", out.read_text())):
            subprocess.run(["scancel", "--name", run_id], check=False)


def _start(cmd: list[str], env: dict[str, str], out: Path) -> subprocess.Popen:
    """Snakemake in the background, its output into ``out`` (read while it runs)."""
    with out.open("w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
    _STARTED.append((proc, out))
    return proc


def _finish(proc: subprocess.Popen, out: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = out.read_text()
    assert proc.returncode == 0, text[-6000:]
    return text


def _wait(condition, what: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _submissions(output: str, workdir: Path) -> list[tuple[str, str]]:
    """(Slurm job id, rule) of every submission, in order."""
    subs = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", output)
    log_dir = (workdir / ".snakemake" / "slurm_logs").resolve()
    return [
        (job, Path(log).resolve().relative_to(log_dir).parts[0].removeprefix("rule_"))
        for job, log in subs
    ]


def _wildcards(run: str) -> dict[str, str]:
    m = re.search(r"eval(\d)/lr0.001/seed(\d+)", run)
    return {"e": m.group(1), "s": m.group(2)}


def _job_id_of(workdir: Path, run: str) -> str:
    """The Slurm job id of the (only) running train job of ``run``, from its Slurm log."""
    # the plugin's log folder: the wildcard values data_model_evaluation_lr_seed
    pattern = ".snakemake/slurm_logs/rule_train/emoji_standard_{e}_0.001_{s}/*.log".format(
        **_wildcards(run)
    )
    logs = sorted(workdir.glob(pattern))
    assert len(logs) == 1, logs
    return logs[0].stem


def _slurm_state(jobs: list[str]) -> dict[str, tuple[str, str]]:
    """Slurm job id -> (state, time limit) as squeue reports it (finished jobs included)."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--jobs", ",".join(jobs), "--format=%i|%T|%l"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {i: (state, limit) for i, state, limit in (line.split("|") for line in out.split())}


def _metrics(workdir: Path, run: str) -> dict:
    m = json.loads((workdir / run / "metrics.json").read_text())
    m = {k: v for k, v in m.items() if k not in TIMING}
    m["history"].pop("train_time")
    m["params"].pop("data")  # the path of each study's own (identical) data file
    return m


def _assert_same_run(ref: Path, got: Path, run: str, resumed: bool = True) -> None:
    """Same metrics (timings aside) and bit-identical weights as the uninterrupted ``ref``;
    ``got`` counts its resumes (``resumed``: at least one), the reference none."""
    want, have = _metrics(ref, run), _metrics(got, run)
    assert want.pop("resumes") == 0
    resumes = have.pop("resumes")
    assert resumes >= 1 if resumed else resumes == 0, resumes
    assert have == want
    a = torch.load(ref / run / "model.pt", weights_only=True)
    b = torch.load(got / run / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (got / run / CHECKPOINT_NAME).exists()


def _resumed_epoch(log: str) -> int:
    """The epoch the retried training resumed after (the rule log holds the last attempt:
    Snakemake removes a job's log before it runs it again)."""
    resumed = RESUMED.findall(log)
    assert len(resumed) == 1 and int(resumed[0]) >= 1, log[-4000:]
    return int(resumed[0])


def _slurm_log(workdir: Path, job: str) -> str:
    (log,) = workdir.glob(f".snakemake/slurm_logs/rule_*/*/{job}.log")
    return log.read_text()


# --- (1) a time limit --------------------------------------------------------------------------
@pytest.mark.slow
@SLURM_GROUP
@pytest.mark.timeout(900)
def test_time_limit_is_retried_with_more_time_and_resumes_exactly(tmp_path, slurm_partition):  # noqa: F811
    """runtime 1 min x attempt (get_train_runtime): Slurm ends attempt 1 at its limit
    (TIMEOUT), each retry gets one minute more, resumes from the checkpoint, and the run
    ends like an uninterrupted one.

    The minute counts from the job's start, so it includes Snakemake's start on the node and
    torch's import (half of it on a busy 2-core machine): short epochs (~4 s) put the first
    checkpoint well inside it, and their sleeps alone (81 s) outlast it, so attempt 1 always
    times out. Two attempts are planned; a slow or busy machine may need the third that the
    profile allows (retries: 2), so the test checks every attempt, not a count that depends
    on the machine's speed, and the resume of the last one."""
    run = RUN.format(evaluation=4, seed=1)
    targets = [f"{run}/metrics.json"]
    resources = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())["resources"]
    resources["train"]["runtime"] = 1  # minutes; the rule multiplies it by the attempt
    settings = dict(max_epochs=30, resources=resources)
    ref = _reference(tmp_path, targets, **settings)
    work = tmp_path / "slurm"
    cfg = _slurm_config(work, **settings)
    env = job_env(SCALECNN_SLURM_PARTITION=slurm_partition, **{SLOW_HOOK_ENV: "0.15"})
    # replacing the profile's set-resources leaves the rule's own runtime to train
    cmd = _slurm_cmd(work, cfg, targets, "--set-resources", "train:mem_mb=2000")
    out = _finish(_start(cmd, env, tmp_path / "slurm.out"), tmp_path / "slurm.out", 800)
    assert ref.wait(timeout=300) == 0, ref.communicate()[0][-4000:]

    train = [job for job, rule in _submissions(out, work) if rule == "train"]
    assert 2 <= len(train) <= 3, out[-6000:]  # at least one retry, at most the profile's 2
    assert "Trying to restart job" in out
    states = _slurm_state(train)
    limits = [f"{attempt}:00" for attempt in range(1, len(train) + 1)]  # attempt x 1 min
    expected = {job: ("TIMEOUT", limit) for job, limit in zip(train, limits)}
    expected[train[-1]] = ("COMPLETED", limits[-1])
    assert states == expected, states
    runtimes = re.findall(r"rule train:\n(?:.*\n)*?\s+resources: .*?runtime=(\d+)", out)
    assert runtimes == [str(a) for a in range(1, len(train) + 1)], runtimes
    assert "DUE TO TIME LIMIT" in _slurm_log(work, train[0])
    epoch = _resumed_epoch((work / LOG.format(evaluation=4, seed=1)).read_text())
    # from a checkpoint, not from scratch; a limit that falls after the last epoch's checkpoint
    # (during the test evaluation) leaves the last attempt only the evaluation: epoch 30
    assert 1 <= epoch <= 30
    _assert_same_run(tmp_path / "ref", work, run)


# --- (2) scancel ---------------------------------------------------------------------------------
@pytest.mark.slow
@SLURM_GROUP
@pytest.mark.timeout(900)
def test_cancelled_trainings_are_retried_and_resume_exactly(tmp_path, slurm_partition):  # noqa: F811
    """Two trainings running side by side: one cancelled with `scancel --signal=TERM` (its
    steps get SIGTERM; the job FAILS), one with a plain `scancel` (CANCELLED). Both are
    submitted again (attempt 2), resume from their checkpoints and end like uninterrupted
    runs."""
    runs = [RUN.format(evaluation=4, seed=s) for s in (1, 2)]
    targets = [f"{run}/metrics.json" for run in runs]
    settings = dict(max_epochs=6)
    ref = _reference(tmp_path, targets, **settings)
    work = tmp_path / "slurm"
    cfg = _slurm_config(work, **settings)
    env = job_env(SCALECNN_SLURM_PARTITION=slurm_partition, **{SLOW_HOOK_ENV: "0.3"})
    proc = _start(_slurm_cmd(work, cfg, targets), env, tmp_path / "slurm.out")
    ckpts = [work / run / CHECKPOINT_NAME for run in runs]
    _wait(lambda: all(c.exists() for c in ckpts), "both checkpoints", 300, proc)
    time.sleep(2)  # into the next epoch
    first = {run: _job_id_of(work, run) for run in runs}
    subprocess.run(["scancel", "--signal=TERM", first[runs[0]]], check=True)
    subprocess.run(["scancel", first[runs[1]]], check=True)
    out = _finish(proc, tmp_path / "slurm.out", 600)
    assert ref.wait(timeout=300) == 0, ref.communicate()[0][-4000:]

    train = [job for job, rule in _submissions(out, work) if rule == "train"]
    assert len(train) == 4 and set(first.values()) <= set(train[:2]), (train, first)
    assert out.count("Trying to restart job") == 2, out[-6000:]
    states = _slurm_state(train)
    assert states[first[runs[0]]][0] == "FAILED", states  # the training exited with 143
    assert states[first[runs[1]]][0] == "CANCELLED", states
    assert sorted(s for j, (s, _) in states.items() if j not in first.values()) == [
        "COMPLETED",
        "COMPLETED",
    ], states
    for run, seed in zip(runs, (1, 2), strict=True):
        _resumed_epoch((work / LOG.format(evaluation=4, seed=seed)).read_text())
        _assert_same_run(tmp_path / "ref", work, run)


# --- (3) the head process dies -------------------------------------------------------------
@pytest.mark.slow
@SLURM_GROUP
@pytest.mark.timeout(900)
def test_dead_head_process_rerun_keeps_finished_and_resumes_unfinished(tmp_path, slurm_partition):  # noqa: F811
    """The Snakemake head process is SIGKILLed while one training has finished (Mid2Rest,
    short epochs) and one is running (All2All). Recovery as docs/cluster.md says: cancel the
    dead run's jobs (`scancel --name <SLURM run ID>`), `snakemake --unlock`, and the same
    command again: the finished training is not redone, the other resumes."""
    done, running = RUN.format(evaluation=2, seed=1), RUN.format(evaluation=4, seed=1)
    targets = [f"{done}/metrics.json", f"{running}/metrics.json"]
    settings = dict(max_epochs=10, evaluations=[2, 4])
    ref = _reference(tmp_path, targets, **settings)
    work = tmp_path / "slurm"
    cfg = _slurm_config(work, **settings)
    env = job_env(SCALECNN_SLURM_PARTITION=slurm_partition, **{SLOW_HOOK_ENV: "0.4"})
    cmd = _slurm_cmd(work, cfg, targets)
    first_out = tmp_path / "first.out"
    proc = _start(cmd, env, first_out)

    def done_seen() -> bool:
        """The head has recorded the Mid2Rest training as finished, and the All2All one has
        a checkpoint (waiting for both, not one, holds if Slurm started them one by one)."""
        text = first_out.read_text()
        finished = len(re.findall(r"Finished jobid: \d+ \(Rule: train\)", text)) >= 1
        return finished and (work / running / CHECKPOINT_NAME).exists()

    _wait(done_seen, "the first finished training and the second's checkpoint", 400, proc)
    assert (work / done / "metrics.json").exists()
    assert not (work / running / "metrics.json").exists(), "the All2All run ended too soon"
    os.killpg(proc.pid, signal.SIGKILL)  # the head dies; its Slurm jobs go on
    proc.wait()
    run_id = re.search(r"SLURM run ID: (\S+)", first_out.read_text()).group(1)
    done_mtime = (work / done / "metrics.json").stat().st_mtime_ns

    subprocess.run(["scancel", "--name", run_id], check=True)

    def gone() -> bool:
        q = subprocess.run(
            ["squeue", "--noheader", "--name", run_id], capture_output=True, text=True
        ).stdout
        return not q.strip()

    _wait(gone, "the cancelled jobs to end", 120)
    snakemake(work, "--unlock", "--cores", "1", "--configfile", cfg)
    second_out = tmp_path / "second.out"
    out = _finish(_start(cmd, env, second_out), second_out, 600)
    assert ref.wait(timeout=300) == 0, ref.communicate()[0][-4000:]

    rules = [rule for _, rule in _submissions(out, work)]
    assert rules == ["train"], rules  # only the unfinished training
    assert (work / done / "metrics.json").stat().st_mtime_ns == done_mtime
    log = (work / LOG.format(evaluation=4, seed=1)).read_text()
    epoch = _resumed_epoch(log)
    assert 1 <= epoch < 10
    for run in (done, running):
        _assert_same_run(tmp_path / "ref", work, run, resumed=run == running)


# --- a real error is not hidden by the retries -----------------------------------------------
def test_a_real_error_still_fails_after_the_retries_naming_its_log(tmp_path):
    """With the profiles' retries (here: a local run with --retries 2), a job that fails for a
    real reason (a corrupt data file) fails all three attempts; Snakemake stops naming the
    job's log, which names the file."""
    cfg = _config(tmp_path, max_epochs=1)
    path = tmp_path / "data" / "emoji.npz"
    path.write_bytes(path.read_bytes()[:1000])
    target = f"{RUN.format(evaluation=4, seed=1)}/metrics.json"
    proc = snakemake(
        tmp_path, target, "--cores", "1", "--retries", "2", "--configfile", cfg, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert out.count("Trying to restart job") == 2, out[-4000:]
    assert "results/logs/data/emoji.log" in out, out[-4000:]
    assert "emoji.npz" in (tmp_path / "results/logs/data/emoji.log").read_text()
