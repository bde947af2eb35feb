#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for testing profiles/slurm (tests/test_slurm.py).
#
#   .ci/slurm-cluster.sh install        apt-get install SLURM, munge, slurmdbd and MariaDB (root or sudo)
#   .ci/slurm-cluster.sh start DIR      configure and start munged, mariadbd, slurmdbd, slurmctld, slurmd
#   .ci/slurm-cluster.sh stop DIR       stop those daemons, by the pids recorded in DIR/pids
#
# Everything lives under DIR (a short path: unix socket paths are limited to 107 characters): its own
# munge key and socket, its own MariaDB on a free 127.0.0.1 port, free ports for the SLURM daemons,
# configuration, state, logs and pid files. Nothing under /etc or /run is touched and no system
# service is started, so several clusters (two developers' test runs) can live on one machine.
# `start` writes DIR/env; `source DIR/env` sets SLURM_CONF for sbatch, squeue, sacct and scontrol
# (and puts DIR/bin/srun first on PATH: see below).
#
# The node declares one GPU without any hardware (GresTypes=gpu, Gres=gpu:1, gres.conf File=/dev/null,
# AutoDetect=off): jobs asking for a GPU are scheduled and see CUDA_VISIBLE_DEVICES=0, and SLURM's
# accounting records the request (AccountingStorageTRES=gres/gpu). The node declares 8 CPUs whatever
# the machine has (SlurmdParameters=config_overrides), like a small GPU node, so the profile's
# cpus_per_gpu fits. Jobs are accounted through slurmdbd + MariaDB, as on a real cluster, so that
# `sacct` works and snakemake-executor-plugin-slurm runs with its default (sacct) status checks.
set -euo pipefail

NODE_CPUS=8
CLUSTER=plantt-test

die() { echo "slurm-cluster: $*" >&2; exit 1; }

# Daemons live in /usr/sbin, which is not on every user's PATH.
PATH="$PATH:/usr/sbin:/sbin"

install_packages() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # The packages' post-install scripts may start system services (munge, mariadb) where the
    # machine runs an init system; this cluster does not use them.
    $sudo apt-get install -y -qq --no-install-recommends \
        slurm-wlm slurmdbd slurm-client munge mariadb-server mariadb-client
}

require() {
    local tool
    for tool in munged mungekey mariadb-install-db mariadbd mariadb slurmdbd slurmctld slurmd \
        sacctmgr sinfo scontrol srun; do
        command -v "$tool" >/dev/null || die "'$tool' not found: run '$0 install' (Debian: slurm-wlm slurmdbd munge mariadb-server)"
    done
}

free_ports() {  # N free TCP ports on 127.0.0.1, one per line
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Start "$@" in the foreground of its own session (no terminal; stdout and stderr to
# DIR/log/NAME.out), in the background of this script, and record its pid as DIR/pids/NAME.pid.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo $! >"$DIR/pids/$name.pid"
}

# Wait up to $2 seconds for the command "$3..." to succeed; if it does not, show the daemon NAME's
# logs, stop everything started so far and fail.
wait_for() {
    local name=$1 seconds=$2
    shift 2
    local end=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$(cat "$DIR/pids/$name.pid")" 2>/dev/null; then
            echo "slurm-cluster: $name is not up after $((SECONDS - end + seconds)) s ('$*' fails):" >&2
            tail -n 30 "$DIR/log/$name.log" "$DIR/log/$name.out" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
}

start_cluster() {
    require
    # slurmd launches each job as its user, and munged, slurmdbd and slurmctld here run as this user.
    [ "$(id -u)" -eq 0 ] || die "start needs root (slurmd must run as root to launch jobs)"
    [ ! -e "$DIR/pids" ] || die "$DIR already holds a cluster (stop it first, or use another folder)"
    mkdir -p "$DIR"/{etc,munge,mysql,spool/ctld,spool/d,log,pids}
    # Whatever fails from here on, leave no daemon behind.
    trap 'echo "slurm-cluster: start failed; stopping what was started" >&2; stop_cluster' EXIT
    # munged wants its socket folder open to all (the key file itself is private).
    chmod 755 "$DIR/munge"
    local user host
    user=$(id -un)
    host=$(hostname -s)
    local ports
    mapfile -t ports < <(free_ports 4)
    local mysql_port=${ports[0]} dbd_port=${ports[1]} ctld_port=${ports[2]} slurmd_port=${ports[3]}
    local mem_mb
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)

    # munge: a fresh key, its own socket.
    mungekey --create --keyfile="$DIR/munge/munge.key" --force
    chmod 600 "$DIR/munge/munge.key"
    local socket="$DIR/munge/munge.socket"
    launch munged munged --foreground --force --socket="$socket" \
        --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
        --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log"
    wait_for munged 20 munge --socket="$socket" --no-input

    # MariaDB for slurmdbd, on 127.0.0.1 only; small buffers (a handful of jobs).
    cat >"$DIR/mysql/my.cnf" <<EOF
[mysqld]
datadir=$DIR/mysql/data
socket=$DIR/mysql/mysqld.sock
pid-file=$DIR/mysql/mysqld.pid
port=$mysql_port
bind-address=127.0.0.1
user=$user
skip-log-bin
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
innodb_lock_wait_timeout=900
log-error=$DIR/log/mariadbd.log
[client]
socket=$DIR/mysql/mysqld.sock
EOF
    mariadb-install-db --defaults-file="$DIR/mysql/my.cnf" --skip-test-db \
        --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 \
        || { tail -n 30 "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    launch mariadbd mariadbd --defaults-file="$DIR/mysql/my.cnf"
    wait_for mariadbd 60 \
        mariadb --defaults-file="$DIR/mysql/my.cnf" -u root -e "SELECT 1"
    local db_pass
    db_pass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    mariadb --defaults-file="$DIR/mysql/my.cnf" -u root -e "
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
        CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

    # slurmdbd (its config must be private to the SLURM user).
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$socket
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=$user
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/spool/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$mysql_port
StorageUser=slurm
StoragePass=$db_pass
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"

    # slurm.conf. MinJobAge keeps finished jobs in slurmctld (scontrol, squeue) for 10 minutes,
    # well above the plugin's status-check interval.
    cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d/%n
SlurmctldPidFile=$DIR/spool/slurmctld.pid
SlurmdPidFile=$DIR/spool/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
MinJobAge=600
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbd_port
# Connections to slurmdbd take their munge socket from here, not from AuthInfo.
AccountingStoragePass=$socket
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
EOF
    # Inside each job, snakemake-executor-plugin-slurm-jobstep (0.6) runs `srun` with every SLURM_*
    # variable removed but a few, SLURM_CONF included: srun would look for /etc/slurm/slurm.conf,
    # then fail ("fetch_config: DNS SRV lookup failed"). This srun, first on PATH, gives it back.
    mkdir -p "$DIR/bin"
    cat >"$DIR/bin/srun" <<EOF
#!/bin/sh
SLURM_CONF="$DIR/etc/slurm.conf" exec "$(PATH="/usr/bin:$PATH" command -v srun)" "\$@"
EOF
    chmod +x "$DIR/bin/srun"
    cat >"$DIR/env" <<EOF
export SLURM_CONF="$DIR/etc/slurm.conf"
export PATH="$DIR/bin:\$PATH"
EOF
    export SLURM_CONF="$DIR/etc/slurm.conf"

    launch slurmdbd slurmdbd -D
    # slurmdbd reads slurmdbd.conf beside slurm.conf (SLURM_CONF's folder).
    wait_for slurmdbd 60 sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    launch slurmctld slurmctld -D
    wait_for slurmctld 30 scontrol ping
    launch slurmd slurmd -D -N "$host"
    wait_for slurmd 30 node_idle "$host"
    trap - EXIT
    echo "slurm-cluster: up in $DIR (source $DIR/env); node $host: $NODE_CPUS CPUs, gpu:1, ${mem_mb} MB"
}

node_idle() { [ "$(sinfo -h -n "$1" -o %T)" = idle ]; }

stop_cluster() {
    [ -d "$DIR/pids" ] || return 0
    local name pid
    # Jobs still queued or running (a run that was killed): cancel them first, or their processes
    # (slurmstepd and the job's own) would outlive slurmd.
    if [ -f "$DIR/pids/slurmctld.pid" ] && kill -0 "$(cat "$DIR/pids/slurmctld.pid")" 2>/dev/null; then
        export SLURM_CONF="$DIR/etc/slurm.conf"
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            echo "slurm-cluster: cancelling jobs left in the queue: $(echo $jobs)" >&2
            # shellcheck disable=SC2086
            scancel $jobs || true
            for _ in $(seq 1 60); do
                [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
                sleep 0.5
            done
        fi
    fi
    # Reverse order of start: the node, the controller, accounting, its database, munge.
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        [ -f "$DIR/pids/$name.pid" ] || continue
        pid=$(cat "$DIR/pids/$name.pid")
        # Only that daemon (a pid of a daemon that died on its own may have been reused).
        if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "slurm-cluster: $name ($pid) ignored SIGTERM for 20 s; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$DIR/pids/$name.pid"
    done
    rmdir "$DIR/pids" 2>/dev/null || true
}

case "${1:-}" in
    install) install_packages ;;
    start | stop)
        [ $# -eq 2 ] || die "usage: $0 start|stop DIR"
        mkdir -p "$2"
        DIR=$(cd "$2" && pwd)
        if [ "$1" = start ]; then start_cluster; else stop_cluster; fi
        ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
