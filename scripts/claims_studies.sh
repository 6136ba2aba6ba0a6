#!/usr/bin/env bash
# #15: the papers' claims rerun, one study after another (one worker: never two torch jobs on
# this machine's two cores), each in its own database under results/<study>/ (committed, so a
# later session resumes it with the same command), then published beside it.
# Usage: scripts/claims_studies.sh [--timeout SECONDS] [study ...]
#   (default: claims_teachers claims_tokens claims_cache; --timeout applies to each study)
set -euo pipefail
cd "$(dirname "$0")/.."
libkd=${LIBKD:-.venv/bin/libkd}
run_args=()
if [ "${1:-}" = "--timeout" ]; then
  run_args=(--timeout "$2")
  shift 2
fi
studies=("$@")
if [ ${#studies[@]} -eq 0 ]; then
  studies=(claims_teachers claims_tokens claims_cache)
fi
for study in "${studies[@]}"; do
  storage="sqlite:///results/$study/libkd.db"
  mkdir -p "results/$study"
  start=$(date +%s)
  "$libkd" run "studies/$study.yaml" --storage "$storage" --no-dashboard "${run_args[@]}"
  echo "$study: this session's run took $(( $(date +%s) - start )) s"
  "$libkd" publish "studies/$study.yaml" --storage "$storage" \
    --command "scripts/claims_studies.sh $study (libkd run studies/$study.yaml --storage $storage)"
done
