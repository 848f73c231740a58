#!/usr/bin/env bash
# Write the version-1.0 record in /work/v1 once all trainings have finished.
# Before: main has the 1.0.0 version bump and the new docs/reproduction_notes.md committed.
# After: in /work/main, `git pull /work/v1 HEAD` (the record commit), remove record-run/.
set -eu
cd /work/v1
export PYTHONPATH=/work/v1/src
python -c 'import scalecnn; assert scalecnn.__file__.startswith("/work/v1/")'
pgrep -f "snakemake --cores 2 --configfile config/reproduce_emoji.yaml" && { echo "record run still running"; exit 1; }
snakemake --unlock --configfile config/reproduce_emoji.yaml
ls results/runs/emoji/*/eval2/*/*/.checkpoint.pt 2>/dev/null && { echo "unfinished trainings"; exit 1; }
echo "finished trainings: $(ls results/runs/emoji/*/eval2/*/*/metrics.json | wc -l) (expect 49)"
C=$(git rev-parse HEAD)
git fetch -q /work/main main && git merge --ff-only FETCH_HEAD
git diff --quiet "$C" HEAD -- src/scalecnn/layers src/scalecnn/models src/scalecnn/data \
  src/scalecnn/training.py src/scalecnn/epochs.py src/scalecnn/evaluation.py \
  src/scalecnn/checkpoint.py src/scalecnn/atomic.py config/reproduce_emoji.yaml \
  workflow/scripts/prepare_data.py workflow/scripts/select_lr.py \
  || { echo "frozen code changed between $C and main"; exit 1; }
if snakemake -n --configfile config/reproduce_emoji.yaml record --quiet rules 2>&1 | grep -E "^(train|prepare_data) "; then
  echo "a training or the data would run again: stop"; exit 1
fi
snakemake --cores 2 --configfile config/reproduce_emoji.yaml record 2>&1 | tee /work/record-write.log | tail -20
git status --short
