#!/usr/bin/env bash
# #15: the papers' claims rerun, one study after another (one worker: never two torch jobs on
# this machine's two cores), then published under results/<study>/. The databases are
# committed, so a later session resumes a study with the same command. The 50-epoch studies
# each have their own database under results/<study>/; the schedule pilot and the 200-epoch
# studies share results/convergence/libkd.db, so a run one of them trained is copied into
# the others (same configuration and seed), not trained again.
# Usage: scripts/claims_studies.sh [--timeout SECONDS] [study ...]
#   (default: pilot_epochs claims_teachers_e200 claims_tokens_e200 claims_cache_e200;
#   --timeout applies to each study: no trial starts after it, the running one finishes)
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
  studies=(pilot_epochs claims_teachers_e200 claims_tokens_e200 claims_cache_e200)
fi
for study in "${studies[@]}"; do
  case "$study" in
    pilot_epochs | *_e200) folder=results/convergence ;;
    *) folder="results/$study" ;;
  esac
  storage="sqlite:///$folder/libkd.db"
  mkdir -p "$folder"
  start=$(date +%s)
  "$libkd" run "studies/$study.yaml" --storage "$storage" --no-dashboard "${run_args[@]}"
  echo "$study: this session's run took $(( $(date +%s) - start )) s"
  "$libkd" publish "studies/$study.yaml" --storage "$storage" \
    --command "scripts/claims_studies.sh $study (libkd run studies/$study.yaml --storage $storage)"
done
