#!/bin/bash
# A one-node Slurm on this machine, for tests and for trying `libkd launch`:
#   scripts/slurm_local.sh start DIR    # munged, slurmctld, slurmd; state and logs in DIR
#   scripts/slurm_local.sh stop DIR
# Needs root and the Debian packages slurm-wlm and munge. After `start`, sbatch, squeue,
# sacct and scancel talk to it with SLURM_CONF=DIR/slurm.conf (printed).
set -euo pipefail
action="${1:?start or stop}"
dir="$(realpath -m "${2:?a folder for the cluster state}")"
conf="$dir/slurm.conf"

stop() {
  munge_dir="$(cat "$dir/munge_dir" 2>/dev/null || true)"
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" ${munge_dir:+"$munge_dir/munged.pid"}; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  [ -z "$munge_dir" ] || rm -rf "$munge_dir"
}

if [ "$action" = stop ]; then
  stop
  exit 0
fi
[ "$action" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "slurm_local.sh: needs root (slurmd runs jobs as their user)" >&2; exit 1; }
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || { echo "slurm_local.sh: $tool missing; apt-get install -y slurm-wlm munge" >&2; exit 1; }
done

host="$(hostname)"
cpus="$(nproc --all)"  # not `nproc`: it reports OMP_NUM_THREADS when that is set
mkdir -p "$dir/spool/ctld" "$dir/spool/d" "$dir/log"
# munged runs as the munge user, which may not enter DIR's parents (a private temporary
# folder): its key, log and pid live in a folder of their own.
munge_dir="$(mktemp -d /tmp/libkd-munge-XXXXXX)"
echo "$munge_dir" >"$dir/munge_dir"
chown munge:munge "$munge_dir" 2>/dev/null || true
chmod 700 "$munge_dir"
key="$munge_dir/munge.key"
if [ ! -f "$key" ]; then
  dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  chown munge:munge "$key" 2>/dev/null || true
  chmod 400 "$key"
fi
# munged: one socket the Slurm daemons and clients of this cluster share.
socket_dir=/run/munge
mkdir -p "$socket_dir"
chown munge:munge "$socket_dir" 2>/dev/null || true
user=munge
id munge >/dev/null 2>&1 || user=root
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then  # no working munged yet
  runuser -u "$user" -- munged --key-file="$key" --pid-file="$munge_dir/munged.pid" \
    --log-file="$munge_dir/munged.log" --seed-file="$munge_dir/seed" --force
fi

cat >"$conf" <<EOF
ClusterName=libkd
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
KillWait=10
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
export SLURM_CONF="$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 60); do
  if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|alloc"; then
    echo "SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.5
done
echo "slurm_local.sh: the node did not come up; see $dir/log" >&2
stop
exit 1
