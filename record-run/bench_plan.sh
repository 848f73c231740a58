#!/usr/bin/env bash
# Refresh the CPU tables of benchmarks/README.md on an idle machine (after the record run),
# at a committed, clean main. Each writes JSON under benchmarks/results/ (ignored).
set -eu
cd /work/main
mkdir -p benchmarks/results
git status --porcelain --untracked-files=no | grep . && { echo "dirty tree"; exit 1; }
# 1. layers, conv3d layer, model steps (2 threads, with direct), throughput, floor, epoch, threads
python benchmarks/run.py --json benchmarks/results/cpu2.json 2>&1 | tee benchmarks/results/cpu2.txt
# 2. model steps at one thread with the plain library (the reproduction's setting; alone on the machine)
python benchmarks/run.py --quick --threads 1 --skip-layers --skip-floor --skip-threads --skip-forward-kernels --skip-epoch \
  --no-memory --skip-conv3d-layer --skip-throughput --plain-library \
  --json benchmarks/results/steps1.json 2>&1 | tee benchmarks/results/steps1.txt
# 3. the factorised alternative
python benchmarks/factorised.py --threads 2 2>&1 | tee benchmarks/results/factorised.txt
# 4. the study's time from epoch costs, with the new record's epochs
python benchmarks/run.py --threads 1 --study-time --study-data /work/v1/results/data/emoji.npz \
  --disco-basis /work/v1/results/bases/disco_basis.pt --skip-layers --skip-conv3d-layer \
  --skip-models --skip-throughput --skip-floor --skip-forward-kernels --skip-epoch --skip-threads --no-memory \
  --json benchmarks/results/study.json 2>&1 | tee benchmarks/results/study.txt
# Then in benchmarks/README.md: CPU tables from these runs, headed "<cpu> (<capability>), N threads,
# torch <v>, commit <c>". H200 tables (layers' H200 columns -> own table, CUDA chunks, steps H200):
# the numbers first appear in 35627af (2026-11-26, docs only): code of its parent b3432b2 or
# earlier, before the sparse backwards / NNPACK / kernel spectra by matmul; head them so.
# "Forward kernels" table: no script; find with git log -S "290–310" which code; or measure
# with a small loop (F.conv2d oneDNN vs torch._nnpack_spatial_convolution vs fft path).
