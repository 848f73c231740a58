#!/usr/bin/env bash
# Start or resume the version-1.0 record run in /work/v1 (a clean clone at commit C).
# Never pull into /work/v1 while it runs. Resume = run this script again.
set -u
cd /work/v1
# the clone's own package, not the editable install of /work/main
export PYTHONPATH=/work/v1/src
python -c 'import scalecnn, sys; assert scalecnn.__file__.startswith("/work/v1/"), scalecnn.__file__' || exit 1
echo "=== $(date -u +%FT%TZ) start/resume at $(git rev-parse HEAD) $(git status --porcelain --untracked-files=no | wc -l) changed; CPU $(python -c "import torch; print(torch.backends.cpu.get_cpu_capability())") $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2)" >> /work/v1-run.log
snakemake --unlock --configfile config/reproduce_emoji.yaml >> /work/v1-run.log 2>&1
# trainings stopped mid-way (a checkpoint, no metrics.json) resume first
resume=$(for c in results/runs/*/*/*/*/*/.checkpoint.pt; do [ -f "$c" ] && echo "$(dirname "$c")/metrics.json"; done)
exec snakemake --cores 2 --configfile config/reproduce_emoji.yaml --rerun-incomplete \
  --keep-going ${resume:+--prioritize $resume} >> /work/v1-run.log 2>&1
