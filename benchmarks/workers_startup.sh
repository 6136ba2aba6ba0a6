#!/bin/bash
# Start-up and idle exit of `libkd run --workers 2`:
#   STUDY=qs3.yaml CACHE=cache PYTHON=.venv/bin/python benchmarks/workers_startup.sh CODE_DIR DB
# CODE_DIR: a checkout of libkd (the code that runs); DB: a new SQLite file. STUDY was the
# quickstart with seeds [0] and grid distill.teachers [[conv], [inv], [conv, inv]], CACHE a
# cache folder where one earlier `libkd run` of it had built the teachers and logits.
# Prints when the first trial started and how long the command ran after the last one.
set -e
cd "$1"
start=$(date +%s.%N)
"${PYTHON:-python}" -m harness.cli run "$STUDY" --workers 2 --storage "sqlite:///$2" --cache-dir "$CACHE" --no-dashboard > "$2.log" 2>&1 || echo "exit $?" >> "$2.log"
end=$(date +%s.%N)
"${PYTHON:-python}" - "$2" "$start" "$end" <<'PY'
import sqlite3, sys, datetime as dt
db, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = sqlite3.connect(db).execute("select started_at, finished_at, worker, status from libkd_runs order by id").fetchall()
ts = lambda s: dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp()
first = min(ts(r[0]) for r in rows); last = max(ts(r[1]) for r in rows if r[1])
print(f"{db}: runs={len(rows)} first trial after {first-start:.1f} s; command ended {end-last:.1f} s after the last trial; total {end-start:.1f} s; statuses={[r[3] for r in rows]}")
PY
