#!/usr/bin/env bash
# A real single-node Slurm for the tests (and for trying the slurm profile on one machine).
#
#   .ci/slurm.sh install   apt-get the Debian packages (slurmctld slurmd slurm-client munge); root
#   .ci/slurm.sh start     write a slurm.conf for this host, start munged, slurmctld, slurmd and
#                          wait until the node is idle; prints the partition name
#   .ci/slurm.sh stop      stop the daemons started by `start`
#
# State lives in $BREWFLOW_SLURM_DIR (default /tmp/brewflow-slurm). No accounting database:
# the Snakemake slurm plugin is told to poll squeue (see config/profiles/slurm).
set -euo pipefail

DIR=${BREWFLOW_SLURM_DIR:-/tmp/brewflow-slurm}
PARTITION=${BREWFLOW_SLURM_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf

install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    # the machine's CPUs, whatever OMP_NUM_THREADS says: nproc honours it, and a dask
    # LocalCluster in the process that starts Slurm (e.g. pytest) sets it to 1
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p /etc/slurm "$DIR"/{spool,state,log} /run/slurm
    if [ -f "$CONF" ] && [ ! -f "$DIR/wrote-conf" ] && ! grep -q '^ClusterName=brewflow$' "$CONF"; then
        cp -p "$CONF" "$DIR/slurm.conf.orig"  # someone else's: put back by stop
    fi
    touch "$DIR/wrote-conf"
    cat >"$CONF" <<EOF
ClusterName=brewflow
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurm.sh: starting Slurm daemons needs root" >&2
        exit 1
    fi
    for tool in slurmctld slurmd munged sinfo; do
        command -v "$tool" >/dev/null || { echo "slurm.sh: $tool not installed (run: $0 install)" >&2; exit 1; }
    done
    stop >/dev/null 2>&1 || true
    write_conf
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if [ ! -f /etc/munge/munge.key ]; then
        mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f
        chown munge:munge /etc/munge/munge.key
    fi
    if ! pgrep -x munged >/dev/null; then
        su -s /bin/sh munge -c /usr/sbin/munged
        touch "$DIR/started-munged"
    fi
    slurmctld -i
    slurmd
    for _ in $(seq 60); do
        if sinfo -h -o "%t" 2>/dev/null | grep -qx "idle"; then
            echo "$PARTITION"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm.sh: the node did not become idle in 30 s; logs in $DIR/log" >&2
    sinfo >&2 || true
    tail -n 20 "$DIR"/log/*.log >&2 || true
    exit 1
}

wait_gone() {  # wait until no process named $1 is left (10 s at most)
    for _ in $(seq 40); do
        pgrep -x "$1" >/dev/null || return 0
        sleep 0.25
    done
    pkill -9 -x "$1" 2>/dev/null || true
}

stop() {
    for daemon in slurmd slurmctld; do
        if [ -f "/run/slurm/$daemon.pid" ]; then
            kill "$(cat "/run/slurm/$daemon.pid")" 2>/dev/null || true
            rm -f "/run/slurm/$daemon.pid"
        fi
        pkill -x "$daemon" 2>/dev/null || true
        wait_gone "$daemon"
    done
    if [ -f "$DIR/started-munged" ]; then
        pkill -x munged 2>/dev/null || true
        wait_gone munged
        rm -f "$DIR/started-munged"
    fi
    rm -rf "$DIR/state" "$DIR/spool"
    # no slurm.conf left pointing at a stopped controller: with one, every `scontrol show
    # config` waits ~9 s for it, and the Snakemake slurm plugin runs that when it is imported
    # (every snakemake start); without one it fails at once
    if [ -f "$DIR/wrote-conf" ]; then
        if [ -f "$DIR/slurm.conf.orig" ]; then
            mv "$DIR/slurm.conf.orig" "$CONF"
        else
            rm -f "$CONF"
        fi
        rm -f "$DIR/wrote-conf"
    fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
