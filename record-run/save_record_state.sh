#!/usr/bin/env bash
# Stop the record run gracefully (trainings keep their checkpoints) and archive its state into
# /work/main/record-run/ (results/ and .snakemake/, file times kept).
set -u
PG=$(pgrep -f "snakemake --cores 2 --configfile config/reproduce_emoji.yaml" | head -1)
if [ -n "$PG" ]; then
  kill -TERM -- -"$PG"
  for _ in $(seq 60); do pgrep -f "scalecnn train" > /dev/null || break; sleep 2; done
fi
cd /work/v1 || exit 1
tar --exclude='.snakemake/locks/*' --exclude='results/indices' -czf /work/main/record-run/state.tar.gz results .snakemake
git rev-parse HEAD > /work/main/record-run/commit.txt
ls -la /work/main/record-run/
cp /work/v1-run.log /work/main/record-run/run.log
cp /work/tools/run_record.sh /work/tools/save_record_state.sh /work/tools/finalize_record.sh /work/main/record-run/
