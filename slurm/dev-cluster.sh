#!/usr/bin/env bash
# A real single-node SLURM for trying the cluster path locally and in CI.
#
#   bash slurm/dev-cluster.sh up       # install if missing, configure, start, wait until usable
#   bash slurm/dev-cluster.sh status   # daemons, sinfo
#   bash slurm/dev-cluster.sh down     # stop the daemons this script started (state is kept)
#
# Debian/Ubuntu, as root, no systemd needed: the daemons (MariaDB, munge,
# slurmdbd, slurmctld, slurmd) are started directly and found again by their
# pid files, so `up` is idempotent and `down` stops only what `up` started.
# Everything listens on 127.0.0.1. Env: DEV_CLUSTER_NAME (cluster, default
# devcluster), DEV_PARTITION (default debug), DEV_CLUSTER_TIMEOUT (s, default 120).
set -euo pipefail

CLUSTER="${DEV_CLUSTER_NAME:-devcluster}"
PARTITION="${DEV_PARTITION:-debug}"
TIMEOUT="${DEV_CLUSTER_TIMEOUT:-120}"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
DB_PID=/run/mysqld/mysqld.pid
MUNGE_PID=/run/munge/munged.pid
DBD_PID=$RUN_DIR/slurmdbd.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

say() { printf 'dev-cluster: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }
elapsed() { echo $(( $(date +%s) - T0 )); }

# wait_for SECONDS WHAT CMD...: poll CMD until it succeeds; one clear line on timeout.
wait_for() {
    local limit=$1 what=$2; shift 2
    local end=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < end )) || die "$what did not come up within ${limit}s (logs: $LOG_DIR, /var/log/mysql)"
        sleep 0.5
    done
}

running() {  # running PIDFILE: the process named in PIDFILE is alive
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME: TERM the process we started, wait for it
    local pidfile=$1 name=$2 pid
    running "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { say "$name ($pid) ignored SIGTERM for 30s; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$pidfile"
    say "stopped $name"
}

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd slurmdbd munged sbatch sacct sacctmgr mariadbd; do
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install ${PACKAGES[*]} by hand"
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    # Keep package scripts from starting services (there may be no init system).
    local policy_added=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy_added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/dev/null
    ((policy_added)) && rm -f /usr/sbin/policy-rc.d
    say "packages installed ($(elapsed)s)"
}

slurm_user() { id -u slurm >/dev/null 2>&1 && echo slurm || echo root; }

# Write FILE from stdin only when its content changed; echo 1 if it did.
write_if_changed() {
    local file=$1 tmp; tmp=$(mktemp)
    cat > "$tmp"
    if [[ -f $file ]] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; echo 0; else mv "$tmp" "$file"; echo 1; fi
}

write_configs() {
    local user host node cpus mem defmem changed=0
    user=$(slurm_user)
    host=$(hostname -s)
    mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd
    chown "$user:" "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld
    # Node topology as slurmd sees it; memory a little below the measured
    # value so the node is never drained for "Low RealMemory".
    node=$(slurmd -C | head -n1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(( mem * 95 / 100 ))
    node=$(sed -e "s/RealMemory=[0-9]*/RealMemory=$mem/" -e "s/^NodeName=[^ ]*/NodeName=$host/" <<<"$node")
    # Without a default, every job would claim all of the node's memory.
    defmem=$(( mem / cpus / 2 )); (( defmem > 4096 )) && defmem=4096
    changed=$(( changed + $(write_if_changed "$CONF_DIR/slurm.conf" <<EOF2
# Written by slurm/dev-cluster.sh: single-node development cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=15
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
JobRequeue=1
KillWait=30
MinJobAge=600
InactiveLimit=0
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF2
) ))
    changed=$(( changed + $(write_if_changed "$CONF_DIR/slurmdbd.conf" <<EOF2
# Written by slurm/dev-cluster.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=$user
PidFile=$DBD_PID
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=devcluster
StorageLoc=slurm_acct_db
EOF2
) ))
    chown "$user:" "$CONF_DIR/slurmdbd.conf"; chmod 0600 "$CONF_DIR/slurmdbd.conf"
    chmod 0644 "$CONF_DIR/slurm.conf"
    echo "$changed"
}

start_mariadb() {
    running "$DB_PID" && return 0
    install -d -o mysql -g mysql /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    install -d -o mysql -g mysql /var/log/mysql
    nohup mariadbd --user=mysql --pid-file="$DB_PID" --bind-address=127.0.0.1 \
        --log-error=/var/log/mysql/error.log >/dev/null 2>&1 &
    wait_for "$TIMEOUT" MariaDB mariadb-admin ping
    mariadb -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'devcluster';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
    say "MariaDB up ($(elapsed)s)"
}

start_munge() {
    running "$MUNGE_PID" && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
        else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; fi
    fi
    chown munge: /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    runuser -u munge -- munged --pid-file="$MUNGE_PID"
    wait_for "$TIMEOUT" munge bash -c 'munge -n | unmunge'
    say "munge up ($(elapsed)s)"
}

start_slurm() {
    if ! running "$DBD_PID"; then
        slurmdbd
        wait_for "$TIMEOUT" slurmdbd sacctmgr -n list cluster
        say "slurmdbd up ($(elapsed)s)"
    fi
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if ! running "$CTLD_PID"; then
        slurmctld
        wait_for "$TIMEOUT" slurmctld scontrol ping
        say "slurmctld up ($(elapsed)s)"
    fi
    if ! running "$SLURMD_PID"; then
        slurmd
    fi
    local host; host=$(hostname -s)
    # A node left DOWN/DRAINED by an earlier unclean stop is put back in service.
    if sinfo -h -n "$host" -o %t 2>/dev/null | grep -Eq 'down|drain|fail'; then
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    fi
    wait_for "$TIMEOUT" "node $host (idle in sinfo)" bash -c "sinfo -h -n $host -o %t | grep -Eq '^(idle|mix|alloc)'"
    wait_for "$TIMEOUT" "accounting (sacct)" sacct -n -X -S now
}

cmd_up() {
    [[ $EUID -eq 0 ]] || die "dev-cluster.sh up must run as root (it installs packages and starts daemons)"
    install_packages
    local changed; changed=$(write_configs)
    if (( changed > 0 )) && { running "$CTLD_PID" || running "$SLURMD_PID" || running "$DBD_PID"; }; then
        say "configuration changed: restarting the SLURM daemons"
        stop_pidfile "$SLURMD_PID" slurmd; stop_pidfile "$CTLD_PID" slurmctld; stop_pidfile "$DBD_PID" slurmdbd
    fi
    start_mariadb
    start_munge
    start_slurm
    say "cluster '$CLUSTER' up in $(elapsed)s: partition '$PARTITION', node $(hostname -s) ($(sinfo -h -o '%c CPUs, %m MB'))"
}

cmd_down() {
    [[ $EUID -eq 0 ]] || die "dev-cluster.sh down must run as root"
    stop_pidfile "$SLURMD_PID" slurmd
    stop_pidfile "$CTLD_PID" slurmctld
    stop_pidfile "$DBD_PID" slurmdbd
    stop_pidfile "$MUNGE_PID" munged
    stop_pidfile "$DB_PID" mariadb
    say "down in $(elapsed)s"
}

cmd_status() {
    local rc=0
    for pair in "mariadb:$DB_PID" "munged:$MUNGE_PID" "slurmdbd:$DBD_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
        if running "${pair#*:}"; then echo "${pair%%:*}: running (pid $(cat "${pair#*:}"))"
        else echo "${pair%%:*}: stopped"; rc=1; fi
    done
    ((rc == 0)) && sinfo
    return $rc
}

T0=$(date +%s)
case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: $0 up|down|status" ;;
esac
