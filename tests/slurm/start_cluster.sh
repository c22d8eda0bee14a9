#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine, for the workflow's SLURM test
# (tests/workflow/test_slurm.py) and for trying config/profiles/slurm by hand.
#
#   tests/slurm/start_cluster.sh [STATE_DIR]     # default: $LENSLLM_SLURM_STATE or /var/tmp/lensllm-slurm
#   tests/slurm/stop_cluster.sh  [STATE_DIR]     # ends exactly the daemons this script started
#
# Needs Debian (apt-get) and root. It installs slurmctld, slurmd, slurm-client and munge when they
# are missing (--no-install-recommends), writes /etc/slurm/slurm.conf for this host (one node, one
# partition `debug`, no accounting database, no cgroups), then starts munged, slurmctld and slurmd
# in the foreground of background processes whose PIDs it writes to STATE_DIR/<daemon>.pid.
# It does not use systemd or init scripts. Logs go to STATE_DIR/<daemon>.log.
#
# Exit status: 0 cluster up (the node is idle), 2 this machine cannot run it (not root, not Debian,
# a slurm.conf that is not ours), 1 anything else failed (the daemons it started are stopped again).
set -euo pipefail

STATE_DIR=${1:-${LENSLLM_SLURM_STATE:-/var/tmp/lensllm-slurm}}
HERE=$(cd "$(dirname "$0")" && pwd)
CONF=/etc/slurm/slurm.conf
MARKER="# Written by lensllm tests/slurm/start_cluster.sh"

say() { echo "start_cluster: $*" >&2; }
cannot() { say "$*"; exit 2; }

[ "$(id -u)" -eq 0 ] || cannot "needs root (it installs packages and starts daemons as root)"
[ -f /etc/debian_version ] && command -v apt-get >/dev/null || cannot "needs Debian (apt-get)"
if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
    cannot "$CONF exists and was not written by this script: refusing to replace a real cluster's configuration"
fi
for daemon in munged slurmctld slurmd; do
    running=$(pgrep -x "$daemon" | tr '\n' ' ' || true)
    [ -z "$running" ] || cannot "$daemon already runs on this machine (PID $running): another cluster is up; stop it first"
done
mkdir -p "$STATE_DIR"
for daemon in munged slurmctld slurmd; do
    pidfile="$STATE_DIR/$daemon.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        cannot "$daemon already started from $STATE_DIR (PID $(cat "$pidfile")): run $HERE/stop_cluster.sh $STATE_DIR first"
    fi
    rm -f "$pidfile"
done

# --- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurmctld slurmd slurm-client munge"
    packages=(slurmctld slurmd slurm-client munge)
    # The packages' maintainer scripts must not start the daemons themselves: where no
    # policy-rc.d forbids it already, one does for the time of the install.
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"; }
    status=0
    apt_install > "$STATE_DIR/apt.log" 2>&1 \
        || { apt-get update -q >> "$STATE_DIR/apt.log" 2>&1 && apt_install >> "$STATE_DIR/apt.log" 2>&1; } \
        || status=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    if [ "$status" -ne 0 ]; then
        tail -20 "$STATE_DIR/apt.log" >&2
        say "apt-get install failed"
        exit 1
    fi
fi

# --- munge ----------------------------------------------------------------------------------
getent passwd munge >/dev/null || { say "the munge package did not create the user munge"; exit 1; }
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge

# --- slurm.conf: this host, every CPU, all memory but 1 GB, jobs share the node ----------------
HOST=$(hostname -s)
node=$(slurmd -C | head -1)          # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=<MB>
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<< "$node")
memory=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
real_memory=$(( memory > 2048 ? memory - 1024 : memory ))
topology=$(sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//' <<< "$node")
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd
cat > "$CONF" <<EOF
$MARKER
# A one-node test cluster: $HOST runs slurmctld and slurmd; no accounting database, no cgroups.
ClusterName=lensllm
# Addresses given explicitly: nothing depends on the host name resolving.
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pidfile
SlurmdPidFile=$STATE_DIR/slurmd.pidfile
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs without a memory request take 1 GB per CPU, not the whole node: jobs share the node.
DefMemPerCPU=1000
# Finished jobs stay visible to squeue for 5 minutes: without accounting, Snakemake's SLURM
# executor sees a job finish only through squeue (slurm-status-command: squeue).
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 $topology RealMemory=$real_memory State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
touch "$STATE_DIR/slurm.conf.written"   # stop_cluster.sh removes the file again
say "wrote $CONF ($HOST: $cpus CPUs, RealMemory=$real_memory MB)"

# --- the daemons, in the foreground of background processes whose PIDs are recorded ------------
fail() {
    say "$*"
    for log in "$STATE_DIR"/*.out "$STATE_DIR"/*.log /var/log/munge/munged.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -15 "$log" >&2; }
    done
    "$HERE/stop_cluster.sh" "$STATE_DIR" || true
    exit 1
}
start() {  # start NAME COMMAND...: run COMMAND in the background, its PID into STATE_DIR/NAME.pid
    local name=$1
    shift
    setsid "$@" > "$STATE_DIR/$name.out" 2>&1 < /dev/null &
    echo $! > "$STATE_DIR/$name.pid"
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what did not come up within $seconds s"
}

# munged as the user munge (as its package means it to run); it logs to /var/log/munge/munged.log.
start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for 20 munged bash -c 'munge -n | unmunge'
# -c: a clean start, no jobs or node states left from an earlier run.
start slurmctld /usr/sbin/slurmctld -D -c -i
wait_for 30 slurmctld scontrol ping
start slurmd /usr/sbin/slurmd -D
node_idle() { [ "$(sinfo -h -n "$HOST" -o %t)" = idle ]; }
wait_for 60 "slurmd (node $HOST idle)" node_idle
say "cluster up: $(sinfo -h -o '%P %D %t %c CPUs %m MB') (state in $STATE_DIR)"
