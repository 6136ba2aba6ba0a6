#!/usr/bin/env bash
# Run the Fashion-MNIST paper studies one after another (two worker processes each), then
# publish each study's table and environment under results/<study>/.
# Usage: scripts/paper_studies.sh [study ...]   (default: the four libkd_* studies)
set -euo pipefail
cd "$(dirname "$0")/.."
studies=("$@")
if [ ${#studies[@]} -eq 0 ]; then
  studies=(libkd_teachers libkd_cache libkd_temperature libkd_teacher_size)
fi
for study in "${studies[@]}"; do
  libkd run "studies/$study.yaml" --workers 2
  libkd publish "studies/$study.yaml"
done
