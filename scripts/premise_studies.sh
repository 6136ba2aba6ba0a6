#!/bin/bash
# The premise studies, run or resumed from their committed databases, then published:
#   scripts/premise_studies.sh [pilot] [controls] [data_size]   (default: all, in that order)
# Each `libkd run` resumes where the committed database stopped; `libkd publish` rewrites
# results/<study>/ and the claims index from it. LIBKD names the command (default
# .venv/bin/libkd); LIBKD_CACHE_DIR keeps teachers and caches between calls.
set -euo pipefail
cd "$(dirname "$0")/.."
LIBKD="${LIBKD:-.venv/bin/libkd}"
[ $# -gt 0 ] || set -- pilot controls data_size
for study in "$@"; do
  case "$study" in
    pilot) file=studies/premise_pilot.yaml; db=results/premise_pilot/libkd.db ;;
    controls) file=studies/premise_controls.yaml; db=results/convergence/libkd.db ;;
    data_size) file=studies/premise_data_size.yaml; db=results/premise_data_size/libkd.db ;;
    *) echo "unknown premise study '$study'; give pilot, controls or data_size" >&2; exit 2 ;;
  esac
  mkdir -p "$(dirname "$db")"
  start=$(date +%s)
  $LIBKD run "$file" --storage "sqlite:///$db" --no-dashboard
  echo "$study: $(( $(date +%s) - start )) s"
  $LIBKD publish "$file" --storage "sqlite:///$db" --command "scripts/premise_studies.sh $study"
done
