#!/bin/bash
# The reading commands at two commits, alternated on one synthetic study (1,000 runs x 50
# epochs, benchmarks/analysis_at_scale.py's), medians of 5: a comparison that holds on a
# machine whose speed drifts between runs of the analysis bench.
#   benchmarks/paired_commands.sh BASE_REV [DB_FILE]
# Also times the libraries `report` needs, imported alone (the floor of any reading command).
# Runs from the repository root with .venv/bin/python; BASE_REV is checked out in a temporary
# worktree; the database is generated once at DB_FILE (default /tmp/libkd-paired/synth.db).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base=${1:?give the commit to compare against}
db=${2:-/tmp/libkd-paired/synth.db}
py=$root/.venv/bin/python
unset PYTHONDONTWRITEBYTECODE  # a user's Python writes bytecode
mkdir -p "$(dirname "$db")"
if [ ! -f "$db" ]; then
  "$py" -c "import sys; sys.path.insert(0, 'benchmarks')
from analysis_at_scale import synthesize
from harness.store import Store
synthesize(Store('sqlite:///$db'), name='synth1000', seeds=50)"
fi
old=$(mktemp -d)/base
git worktree add --detach "$old" "$base" >/dev/null
trap 'git worktree remove --force "$old"' EXIT
url=sqlite:///$db
out=$(mktemp)
commands=("status synth1000 --storage $url" "report synth1000 --storage $url"
  "plan studies/quickstart.yaml" "validate studies/quickstart.yaml"
  "publish synth1000 --storage $url --out $(dirname "$db")/published --command bench"
  "dashboard synth1000 --storage $url --out $(dirname "$db")/dashboard.html")
for round in 0 1 2 3 4 5; do  # round 0 warms up (writes bytecode), untimed
  for tree in "$old" "$root"; do
    label=$([ "$tree" = "$root" ] && echo head || echo base)
    for command in "${commands[@]}"; do
      # shellcheck disable=SC2086
      (cd "$tree" && /usr/bin/time -a -o "$out" -f "$round $label ${command%% *} %e" \
        env PYTHONPATH="$tree" "$py" -m harness.cli $command >/dev/null 2>&1)
    done
  done
  # The floor: starting Python and importing only the libraries `report` cannot do without
  # (SQLAlchemy's ORM, polars, numpy, typer with the pydantic it runs commands through, rich).
  /usr/bin/time -a -o "$out" -f "$round head libraries %e" \
    "$py" -c "import sqlalchemy.orm, polars, numpy, typer, pydantic, rich.console" >/dev/null 2>&1
done
"$py" - "$out" "$base" "$(git rev-parse --short HEAD)" <<'PY'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    round_, label, command, seconds = line.split()
    if round_ != "0":
        times[command, label].append(float(seconds))
print(f"command    {sys.argv[2][:9]:>9} s  {sys.argv[3]:>9} s   (medians of 5, alternated)")
for command in ("status", "report", "plan", "validate", "publish", "dashboard"):
    base, head = (statistics.median(times[command, k]) for k in ("base", "head"))
    print(f"{command:10s} {base:11.2f}  {head:11.2f}")
floor = statistics.median(times["libraries", "head"])
print(f"libraries  {'':11s}  {floor:11.2f}   (python -c 'import sqlalchemy.orm, polars, numpy, typer, pydantic, rich.console')")
PY
