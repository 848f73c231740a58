#!/usr/bin/env python
"""Benchmark SiConv2d's direct and fast (FFT) paths and every model's training step.

Usage::

    python benchmarks/run.py [--quick] [--json OUT] [--device cpu|cuda] [--threads 2]
                             [--workflow --workflow-cmd "snakemake --cores 2 --configfile ..."]

Measures, side by side in one run (warm-up first, then the median of repeats,
direct and fast interleaved so that drifting machine load hits both alike):

* every layer shape: forward + backward of ``SiConv2d`` with ``method='direct'``
  and ``method='fft'`` (wall time, process CPU time, their ratios) and the peak
  memory of one forward + backward;
* every registered model that builds with the default arguments: one training
  step (forward, cross-entropy, backward, Adam step; batch 16, 64×64) as a ratio
  to the ``standard`` model's step; SiConv2d models also with their layers
  forced to ``method='direct'`` (the "before"), unless ``--quick``;
* conv3d's ``AutoConv3d(16, 32, 7)`` on its ``(16, 16, 29, 58, 58)`` input, forward +
  backward, ``direct`` against ``fft`` (time and peak memory);
* the sum of the eleven paper models' step ratios (the study's relative compute;
  ``disco`` with the Hermite basis as a same-cost stand-in unless ``--disco-basis``),
  and every model with the FFT convolution layers (``AutoConv3d``, ``XuConv2d``,
  ``SESConv_*``) forced to ``method='direct'``, unless ``--quick``;
* achieved throughput: the FLOPs of each step's direct definition over its measured
  step time, against a float32 matmul's GFLOP/s;
* forward convolutions by oneDNN, NNPACK and the FFT path on the models' plain shapes;
* one epoch of ``scalecnn.training`` split into its parts (steps, validation,
  early-stopping record, checkpoint, slicing) on emoji-like synthetic data;
* threads: one process with 2 threads running two trainings in sequence against two
  single-threaded processes side by side, and 1- vs 2-thread bit-identity;
* with ``--study-time``: one training epoch and one validation pass of every paper model
  on emoji Mid2Rest and the reproduction's time they imply with a record's epochs;
* with ``--workflow``: the wall time of ``--workflow-cmd`` (run only when asked).

Each section is its own module here (``siconv_layers``, ``conv3d_layer``, ``steps``,
``throughput``, ``floor``, ``forward_kernels``, ``epoch``, ``threads``, ``workflow_time``;
the layer and model subjects in ``subjects``, the round-robin timing in ``timing``, the
memory probe in ``memory``); this script parses the options and runs them in that order.

Peak memory: see ``memory.py``.

The machine's load average is recorded before and after: on a shared machine
wall times of multi-threaded code degrade a lot when other processes compete for
the cores (OpenMP threads wait for descheduled peers); process CPU time is the
steadier number then.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from conv3d_layer import bench_conv3d_layer
from epoch import bench_epoch
from floor import bench_floor
from forward_kernels import bench_forward_kernels
from memory import probe_memory
from siconv_layers import bench_layers
from steps import bench_models, summarise_models
from study_time import RECORD, bench_study_time
from threads import bench_threads, thread_worker
from throughput import bench_throughput
from timing import loadavg
from workflow_time import bench_workflow

from scalecnn.provenance import code_commit, cpu_model
from scalecnn.study import PAPER_MODELS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="paper layer shapes only, fewer repeats, no direct model steps",
    )
    p.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    p.add_argument("--models", nargs="*", help="only these models (default: all registered)")
    p.add_argument("--skip-layers", action="store_true")
    p.add_argument("--skip-models", action="store_true")
    p.add_argument("--skip-floor", action="store_true", help="skip the FFT path's floor")
    p.add_argument(
        "--skip-forward-kernels",
        action="store_true",
        help="skip the forward convolutions by oneDNN, NNPACK and FFT",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--workflow", action="store_true", help="also time --workflow-cmd")
    p.add_argument("--workflow-cmd", default="snakemake --cores 2 --configfile config/quick.yaml")
    p.add_argument(
        "--no-tune-allocator",
        action="store_true",
        help="leave glibc's allocator settings alone (scalecnn train/evaluate tune them)",
    )
    p.add_argument(
        "--disco-basis",
        help="disco's basis file (default: the Hermite basis as a same-cost stand-in)",
    )
    p.add_argument(
        "--skip-conv3d-layer", action="store_true", help="skip conv3d's AutoConv3d direct vs fft"
    )
    p.add_argument(
        "--skip-throughput", action="store_true", help="skip the effective GFLOP/s table"
    )
    p.add_argument(
        "--plain-library",
        action="store_true",
        help="also time every model with plain F.conv2d/F.conv3d and no sparse pooled backward",
    )
    p.add_argument("--skip-epoch", action="store_true", help="skip the epoch split into parts")
    p.add_argument("--epoch-model", default="standard", help="model of the epoch section")
    p.add_argument("--epoch-epochs", type=int, default=3, help="epochs timed after a warm-up")
    p.add_argument("--epoch-data", help="STIR file of the epoch section (default: synthetic)")
    p.add_argument("--skip-threads", action="store_true", help="skip the threads section")
    p.add_argument("--thread-models", nargs="+", default=["standard"])
    p.add_argument("--thread-steps", type=int, default=50, help="steps per training (threads)")
    p.add_argument(
        "--thread-check-steps", type=int, default=10, help="steps of the determinism check"
    )
    p.add_argument(
        "--study-time",
        action="store_true",
        help="also time one epoch + validation of every --study-models model (minutes) and "
        "estimate the emoji reproduction's time from a record's epochs",
    )
    p.add_argument("--study-models", nargs="+", default=list(PAPER_MODELS))
    p.add_argument("--study-data", help="emoji STIR file (default: synthetic emoji-like)")
    p.add_argument("--study-record", type=Path, default=RECORD, help="runs table with epochs")
    p.add_argument("--study-cores", type=int, default=2, help="cores of the time estimate")
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    p.add_argument("--thread-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    torch.set_num_threads(args.threads)
    if args.probe_memory:
        job = json.loads(args.probe_memory)
        print(probe_memory(job["spec"], job["method"], args.device))
        return 0
    if not args.no_tune_allocator:  # timings as in `scalecnn train` (not in memory probes)
        from scalecnn.device import tune_allocator

        tune_allocator()
    if args.thread_worker:
        print(json.dumps(thread_worker(json.loads(args.thread_worker), args)))
        return 0

    args.layer_repeats = 3 if args.quick else 5
    args.model_repeats = 5 if args.quick else 7
    args.direct_model_repeats = 3
    env = {
        "commit": code_commit(),  # the code measured (-dirty: with uncommitted changes)
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "cuda_device": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "quick": args.quick,
        "tune_allocator": not args.no_tune_allocator,
        "loadavg_before": loadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        f"commit {env['commit']}, {env['cpu']} ({env['cpu_capability']}), "
        f"torch {env['torch']}, device {args.device}"
        + (f" ({env['cuda_device']})" if env["cuda_device"] else "")
        + f", {env['threads']} threads, load average {env['loadavg_before']}"
    )
    result: dict = {"env": env}
    if not args.skip_layers:
        result["layers"] = bench_layers(args)
    if not args.skip_conv3d_layer:
        result["conv3d_layer"] = bench_conv3d_layer(args)
    if not args.skip_models:
        result["models"] = bench_models(args)
        result["models_sum"] = summarise_models(result["models"])
    if not args.skip_throughput:
        result["throughput"] = bench_throughput(args, result.get("models"))
    if not args.skip_floor:
        result["floor"] = bench_floor(args)
    if not args.skip_forward_kernels:
        result["forward_kernels"] = bench_forward_kernels(args)
    if not args.skip_epoch:
        result["epoch"] = bench_epoch(args)
    if not args.skip_threads and args.device == "cpu":
        result["threads"] = bench_threads(args)
    if args.study_time:
        result["study_time"] = bench_study_time(args)
    if args.workflow:
        result["workflow"] = bench_workflow(args.workflow_cmd)
    env["loadavg_after"] = loadavg()
    print(f"\nload average after: {env['loadavg_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
