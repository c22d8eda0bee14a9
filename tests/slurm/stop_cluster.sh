#!/usr/bin/env bash
# Stop the one-node SLURM cluster that tests/slurm/start_cluster.sh started:
#
#   tests/slurm/stop_cluster.sh [STATE_DIR]      # default: $LENSLLM_SLURM_STATE or /var/tmp/lensllm-slurm
#
# First cancels the jobs still in that cluster (they can only be jobs submitted to it), then ends
# exactly the daemons whose PIDs start_cluster.sh wrote to STATE_DIR/<daemon>.pid (slurmd,
# slurmctld, munged, in that order): SIGTERM, up to 30 s for the process to exit, then SIGKILL.
# A PID whose process is gone, or now belongs to another program, is left alone. Last it removes
# the /etc/slurm/slurm.conf that start_cluster.sh wrote for this state directory. Safe to run
# twice, or after a start that failed half-way.
set -uo pipefail

STATE_DIR=${1:-${LENSLLM_SLURM_STATE:-/var/tmp/lensllm-slurm}}
say() { echo "stop_cluster: $*" >&2; }

alive() {  # alive PID NAME: PID runs and is the program NAME (not a recycled PID)
    [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

ours() { [ -f "$STATE_DIR/$1.pid" ] && alive "$(cat "$STATE_DIR/$1.pid")" "$1"; }

# Jobs left in the cluster (a test that failed while Snakemake had jobs out): cancel them while
# slurmctld still runs, so that no job step outlives the cluster.
if ours slurmctld && ours slurmd; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for _ in $(seq 100); do
            [ -z "$(squeue -h -t PD,R,CG -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

status=0
for daemon in slurmd slurmctld munged; do
    pidfile="$STATE_DIR/$daemon.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if alive "$pid" "$daemon"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 150); do
            alive "$pid" "$daemon" || break
            sleep 0.2
        done
        if alive "$pid" "$daemon"; then
            say "$daemon (PID $pid) did not exit within 30 s of SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            sleep 0.5
        fi
        if alive "$pid" "$daemon"; then
            say "$daemon (PID $pid) is still running"
            status=1
            continue
        fi
        say "stopped $daemon (PID $pid)"
    fi
    rm -f "$pidfile"
done

# The slurm.conf that start_cluster.sh wrote for this state directory goes too: with a slurm.conf
# naming a controller that is gone, every `scontrol` waits about 10 s for it, and Snakemake's SLURM
# plugin calls `scontrol show config` each time Snakemake starts, even for local runs.
CONF=/etc/slurm/slurm.conf
if [ "$status" -eq 0 ] && [ -f "$STATE_DIR/slurm.conf.written" ]; then
    if [ -f "$CONF" ] && grep -qxF "# Written by lensllm tests/slurm/start_cluster.sh" "$CONF"; then
        rm -f "$CONF"
    fi
    rm -f "$STATE_DIR/slurm.conf.written"
fi
exit $status
