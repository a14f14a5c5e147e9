#!/usr/bin/env bash
# A hyperparameter sweep on a SLURM allocation: Ray head on the first node,
# Ray workers on the others, `python -m bench.tune` driving it.
#
#   sbatch slurm/sweep.sh --space search_spaces/smoke.yaml --out runs --name smoke
#   sbatch --nodes=4 --gpus-per-node=4 --cpus-per-task=32 --time=1-00:00:00 slurm/sweep.sh --space ... --name big
#
# Arguments go to `python -m bench.tune` unchanged (plus --address), except
# --stage-data, which this script takes: copy the study's data to node-local disk
# on every node before Ray starts (see docs/slurm.md). Resources
# are the #SBATCH lines below; edit them or override them on the sbatch command
# line. Each node gets one Ray node with the CPUs (and GPUs) SLURM gave it.
#
# Preemption and time limits: SLURM sends USR1 two minutes before the end
# (--signal=B:USR1@120); the script asks the running trials to checkpoint at their
# next training step (bench/search/preempt.py), stops the driver (its state is in
# the run folder), requeues the job and exits. When the job starts again (or whenever the
# run folder already exists) it runs `bench.tune --resume RUN_DIR`, which finishes
# the same study. `scontrol requeue JOBID` and preemption (SIGTERM) work the same way.
#
# Environment (all optional):
#   BENCH_PYTHON      python with the project installed (default: .venv/bin/python in the
#                     submit directory, else python3)
#   RAY_PORT_BASE     first of 200 ports this job uses on every node (default
#                     10000 + 200 * (job id % 113), below the ephemeral range): set it if two
#                     jobs on one node collide; a block inside ip_local_port_range is refused
#   RAY_NODE_IFACE    interface whose address Ray binds to on every node, e.g. ib0 (default:
#                     the address `hostname --ip-address` gives, else the first non-loopback,
#                     non-docker/bridge one; python -m bench.launch.address shows the choice)
#   RAY_NODE_IP       address Ray binds to (one node only; overrides RAY_NODE_IFACE)
#   HDF_STAGE_DIR     node-local folder for --stage-data (default $SLURM_TMPDIR/hdf-stage,
#                     else /tmp/hdf-stage-JOBID; removed when the job ends)
#   RAY_TMP           Ray's temp dir on each node, keep it short (default /tmp/ray-JOBID)
#   RAY_JOIN_TIMEOUT  seconds to wait for all nodes to join (default 180)
#   SWEEP_STOP_SIGNAL signal that asks the driver to stop and save (default TERM: the
#                     driver then always reports "interrupted", exit 3, and the job requeues)
#   SWEEP_CHECKPOINT_WAIT  seconds the running trials get to save mid-epoch after USR1/TERM
#                     before the driver is stopped (default 60)
#
#SBATCH --job-name=hdf-sweep
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
##SBATCH --gpus-per-node=1
##SBATCH --partition=gpu
##SBATCH --account=myproject
set -uo pipefail

die() { printf 'error: %s\n' "$*" >&2; exit 2; }
log() { printf '[sweep %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ -n ${SLURM_JOB_ID:-} ]] || die "run this with sbatch (slurm/sweep.sh needs a SLURM allocation)"
cd "${SLURM_SUBMIT_DIR:-.}"

# --- the driver's arguments: find --out/--name/--resume to locate the run folder
ARGS=("$@")
OUT=runs NAME="" RESUME="" SPACE="" STAGE=0
for ((i = 0; i < ${#ARGS[@]}; i++)); do
    a=${ARGS[i]}; v=${ARGS[i+1]:-}
    case "$a" in
        --stage-data) STAGE=1; unset "ARGS[i]" ;;
        --out) OUT=$v ;; --out=*) OUT=${a#*=} ;;
        --name) NAME=$v ;; --name=*) NAME=${a#*=} ;;
        --space) SPACE=$v ;; --space=*) SPACE=${a#*=} ;;
        --resume) RESUME=$v ;; --resume=*) RESUME=${a#*=} ;;
        --address|--address=*) die "slurm/sweep.sh sets --address itself: drop it from the arguments" ;;
    esac
done
if [[ -z $RESUME ]]; then
    [[ -n $SPACE ]] || die "usage: sbatch slurm/sweep.sh --space SPACE.yaml [--out DIR] [--name NAME] [bench.tune options]"
    [[ -f $SPACE ]] || die "space file $SPACE not found (relative to $PWD)"
    if [[ -z $NAME ]]; then NAME=$(basename "${SPACE%.*}"); ARGS+=(--name "$NAME"); fi
    RUN_DIR=$OUT/$NAME
else
    RUN_DIR=${RESUME%/}; OUT=$(dirname "$RUN_DIR")
fi
ARGS=("${ARGS[@]}")   # without --stage-data
mkdir -p "$OUT" 2>/dev/null && [[ -w $OUT ]] || die "sweep folder $OUT is not writable (from $(hostname -s))"

# A restart (requeue, preemption) or an existing run folder means: finish that study.
if [[ -z $RESUME ]] && { [[ -d $RUN_DIR ]] || [[ -d $RUN_DIR.partial ]] || (( ${SLURM_RESTART_COUNT:-0} > 0 )); }; then
    if [[ -d $RUN_DIR.partial && ! -d $RUN_DIR ]]; then RESUME=$RUN_DIR.partial; else RESUME=$RUN_DIR; fi
    log "run folder $RESUME exists (restart ${SLURM_RESTART_COUNT:-0}): resuming"
fi
if [[ -n $RESUME ]]; then
    [[ -d $RESUME ]] || die "nothing to resume: $RESUME does not exist"
    DRIVER_ARGS=(--resume "$RESUME")
    # Switches that shape what the run does after the search carry over to the resume.
    for a in "${ARGS[@]}"; do
        case "$a" in --no-robustness|--no-report) DRIVER_ARGS+=("$a") ;; esac
    done
else
    DRIVER_ARGS=("${ARGS[@]}")
fi

PY=${BENCH_PYTHON:-}
if [[ -z $PY ]]; then
    if [[ -x .venv/bin/python ]]; then PY=$PWD/.venv/bin/python; else PY=$(command -v python3); fi
fi
RAY=$(dirname "$PY")/ray
[[ -x $RAY ]] || RAY=$(command -v ray) || die "no 'ray' next to $PY nor on PATH"
export RAY PY   # for the commands srun runs on the nodes

# --- ports: one block of 200 per job, so two jobs (or users) on a node do not collide,
# below the kernel's ephemeral range (bench/launch/ports.py has the layout)
BASE=$("$PY" -m bench.launch.ports "$SLURM_JOB_ID") || exit 2
GCS_PORT=$BASE
PORT_ARGS=(--node-manager-port=$((BASE + 2))
           --object-manager-port=$((BASE + 3)) --dashboard-agent-listen-port=$((BASE + 4))
           --dashboard-agent-grpc-port=$((BASE + 5)) --metrics-export-port=$((BASE + 6))
           --runtime-env-agent-port=$((BASE + 7)) --min-worker-port=$((BASE + 10))
           --max-worker-port=$((BASE + 199)))
# Ray starts a client server (default port 10001) only with ray[client] installed.
HEAD_ARGS=(--head --port="$GCS_PORT")
"$PY" -c 'import sys; from ray._private.utils import get_ray_client_dependency_error as e; sys.exit(e() is not None)' 2>/dev/null && HEAD_ARGS+=(--ray-client-server-port=$((BASE + 1)))
# Mid-epoch checkpoints of running trials (bench/search/preempt.py), on shared storage
RUN_BASE=${RUN_DIR%.partial}
export HDF_BENCH_PREEMPT_DIR=$(dirname "$RUN_BASE")/.$(basename "$RUN_BASE").preempt
mkdir -p "$HDF_BENCH_PREEMPT_DIR" && rm -f "$HDF_BENCH_PREEMPT_DIR"/STOP "$HDF_BENCH_PREEMPT_DIR"/*.running
export RAY_TMP=${RAY_TMP:-/tmp/ray-$SLURM_JOB_ID}   # short: Unix socket paths are limited to 107 bytes
# Token authentication with a token of this job only (never ~/.ray/auth_token,
# which a second job of the same user would overwrite); srun passes it to every node.
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN=${RAY_AUTH_TOKEN:-$("$PY" -c 'import secrets; print(secrets.token_hex(32))')}
export RAY_USAGE_STATS_ENABLED=0
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}   # stop at once: the driver is done

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD=${NODES[0]}
NNODES=${#NODES[@]}
if [[ -n ${RAY_NODE_IP:-} ]]; then
    ((NNODES == 1)) || die "RAY_NODE_IP is for one node; this job has $NNODES"
    HEAD_IP=$RAY_NODE_IP
else
    # bench.launch.address prints its one-line error itself (RAY_NODE_IFACE unknown, ...)
    HEAD_IP=$(srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" bash -c '"$PY" -m bench.launch.address || true')
    [[ -n $HEAD_IP ]] || exit 2
fi
# Ray replaces a loopback --node-ip-address by the node's address unless told
# that this is a one-machine cluster; then all its traffic stays on loopback.
[[ $HEAD_IP == 127.* ]] && export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
ADDRESS=$HEAD_IP:$GCS_PORT

# The command each node runs: CPUs/GPUs/memory from what SLURM gave that node.
# It removes its temp dir when the Ray node stops.
NODE_CMD='
rm -rf "$RAY_TMP"; mkdir -p "$RAY_TMP"; trap "rm -rf \"$RAY_TMP\"" EXIT
gpus=${SLURM_GPUS_ON_NODE:-}
if [[ -z $gpus ]]; then
    if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then gpus=$(tr , "\n" <<<"$CUDA_VISIBLE_DEVICES" | grep -c .); else gpus=0; fi
fi
cpus=${SLURM_CPUS_ON_NODE:-1}
mem=()
[[ -n ${SLURM_MEM_PER_NODE:-} ]] && mem=(--object-store-memory=$(( SLURM_MEM_PER_NODE * 1024 * 1024 * 3 / 10 )))
ip=${RAY_NODE_IP:-$("$PY" -m bench.launch.address)} || exit 2
if [[ -n ${STAGE_ENV:-} ]]; then while read -r kv; do export "$kv"; done <<<"$STAGE_ENV"; fi   # NAME=VALUE lines
echo "[sweep] $0 on $(hostname -s): $cpus CPUs, $gpus GPUs, address $ip" >&2
"$RAY" start --block --node-ip-address="$ip" --num-cpus="$cpus" --num-gpus="$gpus" "${mem[@]}" \
    --temp-dir="$RAY_TMP" --include-dashboard=false --disable-usage-stats "$@" &
pid=$!
trap "kill -TERM $pid 2>/dev/null" TERM INT
wait $pid; wait $pid
'

# --- --stage-data: the study's data onto every node's local disk (before Ray starts there)
export STAGE_ENV=""
if ((STAGE)); then
    STAGE_DIR=${HDF_STAGE_DIR:-${SLURM_TMPDIR:+$SLURM_TMPDIR/hdf-stage}}
    STAGE_DIR=${STAGE_DIR:-/tmp/hdf-stage-$SLURM_JOB_ID}
    PLAN=$("$PY" -m bench.launch.stage --to "$STAGE_DIR" -- "${DRIVER_ARGS[@]}") || exit 2
    COPIES=() ENVS=()
    while IFS=$'\t' read -r kind a b; do
        case "$kind" in copy) COPIES+=("$a" "$b") ;; env) ENVS+=("$a=$b") ;; esac
    done <<<"$PLAN"
    STAGE_ENV=$(printf '%s\n' "${ENVS[@]}")
    log "staging $(( ${#COPIES[@]} / 2 )) folder(s) ($(du -sh "${COPIES[@]:0:1}" 2>/dev/null | cut -f1) first) to $STAGE_DIR on $NNODES node(s)"
    t0=$(date +%s)
    # shellcheck disable=SC2016
    srun --overlap --nodes="$NNODES" --ntasks="$NNODES" --ntasks-per-node=1 bash -c '
        set -e; rm -rf "$0"; mkdir -p "$0"
        while (($#)); do mkdir -p "$(dirname "$2")"; cp -a "$1" "$2.part"; mv "$2.part" "$2"; shift 2; done
        echo "[sweep] staged on $(hostname -s): $(du -sh "$0" | cut -f1)" >&2' \
        "$STAGE_DIR" "${COPIES[@]}" || die "staging the data to $STAGE_DIR failed (see above): is the node-local disk full?"
    log "staged in $(( $(date +%s) - t0 ))s; trials read it through: ${ENVS[*]%%=*}"
fi

STEP_PIDS=()
DRIVER_PID=""
cleanup() {  # stop the Ray nodes gracefully (SIGTERM to the steps' tasks), then their sruns
    trap - EXIT TERM USR1 INT
    ((${#STEP_PIDS[@]})) || { unstage; return 0; }
    local step end=$(( $(date +%s) + 20 ))
    for step in $(squeue -h -s -j "$SLURM_JOB_ID" -o %i 2>/dev/null | grep -Ev '[.](batch|extern)$'); do
        scancel --signal=TERM "$step" 2>/dev/null
    done
    for pid in "${STEP_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < end )); do sleep 0.5; done
        kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
    unstage
}
unstage() {  # remove the node-local copies (a requeued job stages again)
    ((STAGE)) && [[ -n ${STAGE_DIR:-} ]] || return 0
    srun --overlap --nodes="$NNODES" --ntasks="$NNODES" --ntasks-per-node=1 rm -rf "$STAGE_DIR" 2>/dev/null
}
trap cleanup EXIT

log "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $NNODES node(s), Ray head $HEAD at $ADDRESS, temp $RAY_TMP"
RAY_NODE_IP=$HEAD_IP srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" bash -c "$NODE_CMD" ray-head "${HEAD_ARGS[@]}" "${PORT_ARGS[@]}" &
STEP_PIDS+=($!)
# Wait for the head's GCS port before anyone joins.
end=$(( $(date +%s) + ${RAY_JOIN_TIMEOUT:-180} ))
until (exec 3<>"/dev/tcp/$HEAD_IP/$GCS_PORT") 2>/dev/null; do
    kill -0 "${STEP_PIDS[0]}" 2>/dev/null || die "the Ray head did not start (see the lines above; port $GCS_PORT taken? set RAY_PORT_BASE)"
    (( $(date +%s) < end )) || die "the Ray head did not open $ADDRESS within ${RAY_JOIN_TIMEOUT:-180}s"
    sleep 1
done
# Every node must reach the head's GCS port before workers start there.
# shellcheck disable=SC2016
mapfile -t UNREACHED < <(srun --overlap --nodes="$NNODES" --ntasks="$NNODES" --ntasks-per-node=1 bash -c \
    'timeout 10 bash -c "exec 3<>/dev/tcp/$0/$1" 2>/dev/null || hostname -s' "$HEAD_IP" "$GCS_PORT")
((${#UNREACHED[@]} == 0)) || die "node ${UNREACHED[0]}${UNREACHED[1]:+ (and $(( ${#UNREACHED[@]} - 1 )) more)} cannot reach the Ray head at $ADDRESS (TCP connect to the GCS port failed): set RAY_NODE_IFACE to the interface the nodes share, or open ports $BASE-$((BASE + 199))"
if ((NNODES > 1)); then
    srun --overlap --nodes=$((NNODES - 1)) --ntasks=$((NNODES - 1)) --ntasks-per-node=1 -x "$HEAD" \
        bash -c "$NODE_CMD" ray-worker --address="$ADDRESS" "${PORT_ARGS[@]}" &
    STEP_PIDS+=($!)
fi
"$PY" - "$ADDRESS" "$NNODES" "${RAY_JOIN_TIMEOUT:-180}" <<'PYEOF' || die "the Ray cluster did not come up (see above)"
import sys, time
import ray
address, want, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
end = time.time() + limit
while (alive := sum(n["Alive"] for n in ray.nodes())) < want:
    if time.time() > end:
        sys.exit(f"error: only {alive} of {want} Ray nodes joined within {limit:.0f}s")
    time.sleep(1)
res = ray.cluster_resources()
print(f"[sweep] Ray cluster ready: {alive} node(s), {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs", file=sys.stderr)
PYEOF

# --- the driver, in the background so that signals reach this script's traps
STOP=""
on_signal() {
    [[ -n $STOP ]] && return
    STOP=$1
    if [[ -n $DRIVER_PID ]]; then checkpoint_trials; fi
    log "got SIG$1: asking the driver to stop (SIG${SWEEP_STOP_SIGNAL:-TERM}) and save"
    [[ -n $DRIVER_PID ]] && kill -s "${SWEEP_STOP_SIGNAL:-TERM}" "$DRIVER_PID" 2>/dev/null
}
checkpoint_trials() {  # ask running trials to save mid-epoch; wait until each did (or the limit)
    local d=$HDF_BENCH_PREEMPT_DIR t0 end f n waiting
    touch "$d/STOP"; t0=$(date +%s); end=$(( t0 + ${SWEEP_CHECKPOINT_WAIT:-60} ))
    while :; do
        n=0 waiting=0
        for f in "$d"/*.running; do
            [[ -e $f ]] || continue
            if [[ ${f%.running}.pt -nt $d/STOP ]]; then n=$((n + 1)); else waiting=$((waiting + 1)); fi
        done
        ((waiting == 0)) && break
        (( $(date +%s) < end )) || { log "$waiting trial(s) did not checkpoint within ${SWEEP_CHECKPOINT_WAIT:-60}s: they resume from their last epoch"; break; }
        sleep 0.5
    done
    log "$n trial(s) checkpointed mid-epoch in $(( $(date +%s) - t0 ))s"
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

if [[ -n $STOP ]]; then   # signalled while Ray was starting: nothing to save yet
    [[ $STOP == USR1 ]] && scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
log "running: python -m bench.tune ${DRIVER_ARGS[*]} --address $ADDRESS"
"$PY" -m bench.tune "${DRIVER_ARGS[@]}" --address "$ADDRESS" &
DRIVER_PID=$!
RC=""
until [[ -n $RC ]]; do
    wait "$DRIVER_PID"; s=$?
    if (( s > 128 )) && kill -0 "$DRIVER_PID" 2>/dev/null; then continue; fi   # a trap interrupted wait
    RC=$s
done
log "driver exited with $RC"
((RC == 0)) && rm -rf "$HDF_BENCH_PREEMPT_DIR"

if [[ $STOP == USR1 && $RC -ne 0 ]]; then
    # Time limit or preemption notice: come back later and finish the study.
    log "requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID" || log "scontrol requeue failed: resubmit with the same arguments to resume"
    exit 0
fi
exit "$RC"
