"""Threads: one process with 2 threads against two single-threaded processes, and bit-identity.

Each worker is a subprocess ``run.py --thread-worker JOB``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from subjects import make_model, train_step

RUN_PY = Path(__file__).with_name("run.py")


def thread_worker(job: dict, args: argparse.Namespace) -> dict:
    """Subprocess body of the threads section: ``job['trainings']`` trainings of
    ``job['steps']`` steps of ``job['model']`` one after the other with
    ``job['threads']`` threads. With ``job['wait']`` it prints ``ready`` after building
    and a warm-up step and starts only when a line arrives on stdin (so that concurrent
    workers start together). Returns start/end times and the last model's parameter
    checksum (SHA-256 of the raw bytes and the float64 sum)."""
    import hashlib

    torch.set_num_threads(job["threads"])
    train_step(make_model(job["model"], "cpu", basis=args.disco_basis), "cpu")()  # warm-up
    models = [
        make_model(job["model"], "cpu", basis=args.disco_basis) for _ in range(job["trainings"])
    ]
    steps = [train_step(m, "cpu") for m in models]
    if job["wait"]:
        print("ready", flush=True)
        sys.stdin.readline()
    start = time.time()
    for step in steps:
        for _ in range(job["steps"]):
            step()
    end = time.time()
    digest = hashlib.sha256()
    total = 0.0
    for p in models[-1].parameters():
        digest.update(p.detach().contiguous().numpy().tobytes())
        total += p.detach().double().sum().item()
    return {"start": start, "end": end, "sha256": digest.hexdigest(), "sum": total}


def _start_worker(job: dict, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, str(RUN_PY), "--thread-worker", json.dumps(job)]
    if args.no_tune_allocator:
        cmd.append("--no-tune-allocator")
    if args.disco_basis:
        cmd += ["--disco-basis", args.disco_basis]
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _run_workers(jobs: list[dict], args: argparse.Namespace) -> list[dict]:
    """Start the workers, wait until all are ready, release them together, collect."""
    procs = [_start_worker(job, args) for job in jobs]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("thread worker failed before its start")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"thread worker exited with {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def bench_threads(args: argparse.Namespace) -> dict:
    """(a) one process with 2 threads running two trainings of N steps one after the
    other against (b) two single-threaded processes running one training each at the
    same time; and whether K steps end bit-identical with 1 and with 2 threads."""
    n, k = args.thread_steps, args.thread_check_steps
    print(f"\n== threads: 2 trainings of {n} steps, 1 process x 2 threads vs 2 x 1 thread ==")
    print(
        f"{'model':<18} {'2 threads, seq s':>16} {'2 procs x 1 s':>13} {'throughput (b)/(a)':>18}"
    )
    out: dict = {"steps": n, "check_steps": k, "models": []}
    for name in args.thread_models:
        job = {"model": name, "steps": n, "wait": True}
        seq = _run_workers([{**job, "threads": 2, "trainings": 2}], args)[0]
        par = _run_workers([{**job, "threads": 1, "trainings": 1}] * 2, args)
        wall_a = seq["end"] - seq["start"]
        wall_b = max(r["end"] for r in par) - min(r["start"] for r in par)
        row = {
            "model": name,
            "one_process_two_threads_wall_s": wall_a,
            "two_processes_one_thread_wall_s": wall_b,
            "throughput_ratio": wall_a / wall_b,
        }
        out["models"].append(row)
        print(
            f"{name:<18} {wall_a:16.2f} {wall_b:13.2f} {row['throughput_ratio']:17.2f}x", flush=True
        )
    print(f"determinism: parameter SHA-256 after {k} steps (seed 0), each run alone")
    for name in args.thread_models:
        runs = {}
        for threads in (1, 1, 2, 2):
            job = {"model": name, "steps": k, "threads": threads, "trainings": 1, "wait": True}
            runs.setdefault(threads, []).append(_run_workers([job], args)[0])
        same = {t: len({r["sha256"] for r in rs}) == 1 for t, rs in runs.items()}
        across = runs[1][0]["sha256"] == runs[2][0]["sha256"]
        diff = abs(runs[1][0]["sum"] - runs[2][0]["sum"])
        check = {
            "model": name,
            "bit_identical_1_thread_repeat": same[1],
            "bit_identical_2_threads_repeat": same[2],
            "bit_identical_1_vs_2_threads": across,
            "param_sum_1_thread": runs[1][0]["sum"],
            "param_sum_2_threads": runs[2][0]["sum"],
        }
        out.setdefault("determinism", []).append(check)
        print(
            f"{name:<18} 1 thread repeat identical: {same[1]}; 2 threads repeat identical: "
            f"{same[2]}; 1 vs 2 threads identical: {across} (|sum difference| {diff:.3g})",
            flush=True,
        )
    return out
