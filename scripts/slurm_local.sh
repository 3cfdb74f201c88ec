#!/usr/bin/env bash
# Runs a suite through a real SLURM scheduler on this one machine, then compares its tables with a local run.
#
#   bash scripts/slurm_local.sh [LOCAL_RESULTS] [SNAKEMAKE ARGS...]
#
# Needs root (Debian/Ubuntu: installs slurm-wlm and munge if missing, writes /etc/slurm/slurm.conf for a
# single node, starts munged, slurmctld and slurmd) and snakemake-executor-plugin-slurm (requirements-slurm.txt,
# installed here).
# LOCAL_RESULTS: a results/<suite> folder of a local run of the same suite; its tables/*.csv must equal ours.
# Default suite: config/smoke.yaml. What this does not test: GPUs (gres), a shared file system across nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCAL_RESULTS=${1:-}
shift || true
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" -m pip install -q -r requirements-slurm.txt

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
fi

host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))  # MiB, less 1 GiB for the system
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<EOF
# Written by ipbench scripts/slurm_local.sh: one node, one CPU partition, no cgroups, no accounting database.
ClusterName=ipbench-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue/sacct long enough for Snakemake's status checks.
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

[ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
  || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 30); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
  sleep 1
done
scontrol update nodename="$host" state=resume 2>/dev/null || true
sinfo

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--configfile config/smoke.yaml)
start=$(date +%s)
# The profile's partition and account are a site's; here: this node's partition, no account. With no
# accounting database sacct cannot answer, so job states come from squeue (MinJobAge above keeps them).
"$PYTHON" -m snakemake --profile workflow/profiles/slurm --slurm-no-account --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 5 \
  --default-resources slurm_partition=cpu runtime=60 mem_mb=2000 "${args[@]}"
echo "SLURM run: $(( $(date +%s) - start )) s"

if [ -n "$LOCAL_RESULTS" ]; then
  suite=$(basename "$LOCAL_RESULTS")
  "$PYTHON" - "$LOCAL_RESULTS/tables" "results/$suite/tables" <<'EOF'
"""Every table CSV of the SLURM run equals the local run's."""
import sys
from pathlib import Path

import pandas as pd

local, slurm = map(Path, sys.argv[1:])
names = sorted(p.name for p in local.glob("*.csv"))
assert names and names == sorted(p.name for p in slurm.glob("*.csv")), (names, list(slurm.glob("*.csv")))
for name in names:
    pd.testing.assert_frame_equal(pd.read_csv(slurm / name), pd.read_csv(local / name), check_exact=True)
    print(f"{name}: equal to the local run")
EOF
fi
