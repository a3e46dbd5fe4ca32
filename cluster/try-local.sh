#!/usr/bin/env bash
# Try the cluster path on this machine: start cluster/local-fake.yaml (a head and two fake
# worker nodes), submit a short default experiment with `ray job submit` and
# engine.placement=spread, show from its results which nodes the workers ran on, submit a
# job with a bad override to show its exit code, and stop the cluster.
#
#   cluster/try-local.sh                 # from anywhere in the checkout; about 2 minutes
#   ROUNDS=5 cluster/try-local.sh        # a longer run
#
# Exit status 0: the run finished with workers on >= 2 nodes, the bad job failed with
# exit code 2, and no process of the cluster is left. Otherwise 1. Uses the `ray` and
# `python` on PATH (the active venv), else ./.venv. Needs port 6379 free (the fake
# provider hard-codes it); the dashboard gets a free port.
#
# The cluster keeps its files in its own --temp-dir, so it does not become the machine's
# "current" Ray: a plain `ray.init()` elsewhere does not join it. Stopping: `ray stop` when
# no other Ray runs on this machine (`ray stop` stops every Ray process of the machine);
# otherwise only this cluster's processes, by process id.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$REPO/.venv/bin/ray" ]; then
    export PATH="$REPO/.venv/bin:$PATH" # the fake nodes and the job driver inherit this PATH
fi
command -v ray >/dev/null || { echo "try-local: no 'ray' on PATH; activate the venv (pip install -e .)" >&2; exit 1; }

# One auth mode for every process below: ray start, the fake nodes, ray job, the driver.
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export RAY_USAGE_STATS_ENABLED=0
ROUNDS="${ROUNDS:-3}"
# Free ports for the dashboard and the head's dashboard agent (which serves job submission):
# another Ray on this machine may hold the defaults 8265 and 52365.
read -r DASHBOARD_PORT AGENT_PORT < <(python -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
DASHBOARD=http://127.0.0.1:$DASHBOARD_PORT
TMPROOT=$(mktemp -d /tmp/fedref-try-local.XXXXXX) # Ray's --temp-dir (short: Ray's socket paths live in it)
RESULTS="$REPO/results/try-local-$(date +%Y%m%d-%H%M%S)"
GCS="$(python -c 'import ray._private.services as s; print(s.get_node_ip_address())'):6379"
# `--working-dir .` leaves out .git, .venv and what .gitignore lists; also leave out any
# other virtual environment in the checkout (the upload limit is 512 MiB).
RUNTIME_ENV='{"excludes": ["**/*venv*/"]}'

say() { printf '\n== %s\n' "$*"; }

cluster_pids() {
    # Processes whose command line names this cluster's temp dir, and all their descendants
    # (Ray's workers rename themselves `ray::...`; the job driver is a worker's child).
    ps -eo pid=,ppid=,args= | ROOT="$TMPROOT" awk '
        { pid[NR] = $1; ppid[NR] = $2; if (index($0, ENVIRON["ROOT"])) mark[$1] = 1 }
        END {
            do { changed = 0
                 for (i = 1; i <= NR; i++) if (!(pid[i] in mark) && (ppid[i] in mark)) { mark[pid[i]] = 1; changed = 1 }
            } while (changed)
            for (p in mark) print p
        }'
}

foreign_ray() {
    # raylet and gcs_server processes that belong to some other Ray on this machine.
    local ours p
    ours=" $(cluster_pids | tr '\n' ' ') "
    for p in $( (pgrep -x raylet; pgrep -x gcs_server) || true); do
        case "$ours" in *" $p "*) ;; *) echo "$p" ;; esac
    done
}

STOPPED=0
stop_cluster() {
    [ "$STOPPED" = 1 ] && return 0
    STOPPED=1
    say "stop the cluster"
    local pids left
    if [ -z "$(foreign_ray)" ]; then
        ray stop
    else
        echo "another Ray runs on this machine: stopping only this cluster's processes, by id (not 'ray stop')"
        pids=$(cluster_pids)
        [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 30); do [ -z "$(cluster_pids)" ] && break; sleep 1; done
        pids=$(cluster_pids)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        sleep 1
    fi
    left=$(cluster_pids | tr '\n' ' ')
    if [ -n "${left// /}" ]; then
        echo "try-local: processes of this cluster are still running:" >&2
        ps -o pid=,args= -p "$(echo $left | tr ' ' ',')" >&2 || true
        return 1
    fi
    echo "check: no process of this cluster is left (other Ray processes on this machine: $(foreign_ray | wc -l) raylet/gcs_server)"
    rm -rf "$TMPROOT"
}
trap 'stop_cluster || exit 1' EXIT
trap 'exit 130' INT TERM

submit() {
    # `ray job submit ARGS`, tried again while the head's job agent is still starting
    # (then no job was created). Returns ray job submit's status: 0 if the job succeeded.
    local out rc
    out=$(mktemp)
    for _ in $(seq 12); do
        rc=0
        ray job submit --address "$DASHBOARD" --working-dir . --runtime-env-json "$RUNTIME_ENV" "$@" 2>&1 | tee "$out" || rc=$?
        grep -q "No available agent to submit job" "$out" || break
        echo "(the job agent is not up yet; submitting again in 5 s)"
        sleep 5
    done
    rm -f "$out"
    return "$rc"
}

say "start the head of cluster/local-fake.yaml (RAY_AUTH_MODE=$RAY_AUTH_MODE, temp dir $TMPROOT)"
RAY_FAKE_CLUSTER=1 ray start --head --port=6379 --num-cpus=1 --dashboard-host=127.0.0.1 \
    --dashboard-port="$DASHBOARD_PORT" --dashboard-agent-listen-port="$AGENT_PORT" \
    --temp-dir="$TMPROOT" --autoscaling-config=cluster/local-fake.yaml --disable-usage-stats 2>&1 |
    grep -E "Local node IP|Ray runtime started" || true
echo "dashboard and job API: $DASHBOARD"
[ -n "$(cluster_pids)" ] || { echo "try-local: ray start failed" >&2; exit 1; }

say "wait until the autoscaler has started both worker nodes"
for i in $(seq 90); do
    ray status --address="$GCS" 2>/dev/null | grep -q "^ 2 ray.worker.fl$" && break
    [ "$i" = 90 ] && { echo "try-local: the autoscaler did not start 2 worker nodes in 180 s" >&2; exit 1; }
    sleep 2
done
ray status --address="$GCS" | sed -n '/^Active:/,/^Pending:/p'
python - "$GCS" <<'EOF'
import sys

import ray

ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
for n in sorted((n for n in ray.nodes() if n["Alive"]), key=lambda n: n["NodeID"]):
    kind = "worker node, fedref_worker=1" if "fedref_worker" in n["Resources"] else "head"
    print(f"  node {n['NodeID']}  {kind:28s} CPU={n['Resources'].get('CPU', 0):g}")
EOF

say "submit the default experiment: $ROUNDS rounds, engine.placement=spread"
submit --submission-id "try-local-run-$(date +%s)" -- \
    fedref-ray run experiments/mnist5k_dirichlet.yaml \
    engine.address=auto engine.placement=spread "run.rounds=$ROUNDS" "run.results_dir=$RESULTS"

say "where the workers ran (from $RESULTS)"
python - "$RESULTS" "$GCS" <<'EOF'
import sys

import pandas as pd
import ray

rounds = pd.read_parquet(f"{sys.argv[1]}/rounds.parquet")
clients = pd.read_parquet(f"{sys.argv[1]}/clients.parquet")
ray.init(address=sys.argv[2], log_to_driver=False, configure_logging=False)
kind = {n["NodeID"]: ("worker node" if "fedref_worker" in n["Resources"] else "head") for n in ray.nodes()}
for _, row in rounds.iterrows():
    places = [w.split("@") for w in row["workers_nodes"]]
    where = ", ".join(f"{w}@...{node[-5:]} ({kind.get(node, '?')})" for w, node in places)
    print(f"  round {row['round']}: accuracy {row['test_accuracy']:.3f}; {where}")
print(clients.groupby(["worker", "node"]).size().rename("clients trained").to_string())
nodes = set(clients["node"])
print(f"workers ran on {len(nodes)} nodes")
if len(nodes) < 2:
    sys.exit("try-local: FAILED, the workers ran on fewer than 2 nodes")
EOF

say "a user error under ray job submit (engine.placement=diagonal): one line, exit code 2"
BAD="try-local-bad-$(date +%s)"
if submit --submission-id "$BAD" -- fedref-ray run experiments/mnist5k_dirichlet.yaml engine.placement=diagonal; then
    echo "try-local: FAILED, the bad job succeeded" >&2
    exit 1
fi
echo "ray job submit exited non-zero (the job failed)"
STATUS=$(ray job status --address "$DASHBOARD" "$BAD" 2>&1)
echo "$STATUS" | grep -E "Status message|failed with exit code" || true
echo "$STATUS" | grep -q "exit code 2" || { echo "try-local: FAILED, the bad job did not exit with code 2" >&2; exit 1; }

stop_cluster
trap - EXIT
printf '\ntry-local: OK\n'
