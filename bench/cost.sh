#!/usr/bin/env bash
# bench/cost.sh: what one request costs in CPU, and what that cost allows on this machine.
#
# A throughput at saturation on two shared cores moves with the machine: bare has reached
# 65,000 on one day and 133,000 requests/s on another. CPU time per request moves much less, and
# it bounds what any overlap of waits can reach: a server whose requests cost S microseconds of
# CPU, driven by a load generator on the same cores whose requests cost W, cannot exceed
# cores x 1,000,000 / (S + W) requests per second (plus PostgreSQL's cost, P, when it shares the
# cores too). This script runs `wrk -t2 -c64` for BENCH_SECS against each server, after a 2 s
# warm-up, and measures per request:
#   - bare (bench/bare): the server's CPU and wrk's;
#   - metahook on SQLite with the pipeline off (durable ingest alone), by thread: the request
#     workers, the inbox writer, the rest;
#   - metahook on PostgreSQL with the pipeline off, and the PostgreSQL cluster's processes
#     (skipped with BENCH_POSTGRES=0);
# and the share of the machine left idle during each run (from /proc/stat, iowait included),
# and the share the hypervisor gave to others (steal): a run with much steal is a noisy one.
# The table gives each server's throughput, its costs, its ceiling, and the ratio of its
# ceiling to bare's: the ratio to bare that full use of the cores would give.
#
# Usage: bash bench/cost.sh [--help]. Needs wrk, python3 and curl; PostgreSQL 15 through
# .ci/postgres.sh. Runs for about a minute. Raw outputs: target/bench/<time>-cost/.

set -Eeuo pipefail
trap 'log "failed: line $LINENO: $BASH_COMMAND"; exit 2' ERR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECS=${BENCH_SECS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
POSTGRES=${BENCH_POSTGRES:-1}
BARE_PORT=${BENCH_BARE_PORT:-3921}
PORT=${BENCH_METAHOOK_PORT:-3920}
BUILD=${BENCH_BUILD:-1}
KEEP=${BENCH_KEEP:-0}
METAHOOK_BIN=${METAHOOK_BIN:-target/release/metahook}
BARE_BIN=${BARE_BIN:-target/release/metahook-bench-bare}
RESULTS=${BENCH_RESULTS_DIR:-target/bench/$(date +%Y%m%d-%H%M%S)-cost}

SECRET=metahook-bench-app-secret
VERIFY_TOKEN=metahook-bench-verify-token
WORK=""
PG_URL=""
BARE_PID=""
SIGNATURE=""

if [[ ${1:-} == --help ]]; then
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    cat <<EOF
Environment (default):
  BENCH_SECS ($SECS)  BENCH_CONNECTIONS ($CONNECTIONS)  BENCH_POSTGRES ($POSTGRES): 0 skips PostgreSQL
  BENCH_BARE_PORT ($BARE_PORT)  BENCH_METAHOOK_PORT ($PORT)
  BENCH_BUILD=0: use the binaries as they are   METAHOOK_BIN, BARE_BIN: other binaries
  BENCH_COMMIT: the commit those binaries were built from, for machine.txt
  BENCH_KEEP=1: keep the temporary directory   BENCH_RESULTS_DIR: where raw outputs go
EOF
    exit 0
fi

# Prints "name ticks" lines: the CPU time (user + system, in clock ticks) of each thread of each
# process given, and of the PostgreSQL cluster's processes when it runs (listed anew each time:
# its connections are opened as the load needs them), by thread name, and the machine's "busy"
# and "idle" ticks from /proc/stat.
snapshot() {
    local pid task
    if [[ -n $PG_URL ]]; then
        # shellcheck disable=SC2046  # one pid per word
        set -- "$@" $(postgres_pids)
    fi
    for pid in "$@"; do
        for task in /proc/"$pid"/task/*; do
            # The name may hold spaces; field 14 and 15 come after its closing parenthesis.
            awk -v name="$(tr ' ' _ <"$task/comm")" '{
                sub(/^.*\) /, ""); print name, $12 + $13 }' "$task/stat" 2>/dev/null || true
        done
    done
    awk '/^cpu / {
        print "machine:busy", $2 + $3 + $4 + $7 + $8; print "machine:idle", $5 + $6
        print "machine:steal", $9 }' /proc/stat
}

# The PostgreSQL cluster's processes: the postmaster and its children.
postgres_pids() {
    local master
    master=$(head -1 "$WORK/pg/postmaster.pid")
    echo "$master"
    ps -o pid= --ppid "$master"
}

# measure NAME PORT PIDS...: warms up, then runs wrk for SECS with snapshots around it, and
# records NAME's throughput, wrk's CPU and the per-thread CPU of PIDS (by thread name).
measure() {
    local name=$1 port=$2
    shift 2
    wrk -t2 -c"$CONNECTIONS" -d2s -s "$WORK/post.lua" "http://127.0.0.1:$port/meta/webhook" \
        >/dev/null
    snapshot "$@" >"$RESULTS/$name.before"
    # wrk's own CPU time, from its rusage as a child of python.
    python3 - "$RESULTS/$name.wrk" "$RESULTS/$name.wrk-cpu" wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" \
        -s "$WORK/post.lua" "http://127.0.0.1:$port/meta/webhook" <<'EOF'
import resource, subprocess, sys
out, cpu, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "w") as f:
    subprocess.run(args, stdout=f, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(cpu, "w").write(f"{r.ru_utime + r.ru_stime}\n")
EOF
    snapshot "$@" >"$RESULTS/$name.after"
    parse_wrk "$RESULTS/$name.wrk" | while read -r key value; do record "$name" "$key" "$value"; done
    record "$name" wrk_cpu "$(cat "$RESULTS/$name.wrk-cpu")"
}

report() {
    python3 - "$RESULTS" "$(getconf CLK_TCK)" "$(nproc)" "$SECS" "$POSTGRES" "$WORK/results" <<'EOF'
import collections, sys

results, tick, cores, secs, postgres, recorded = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]
values = {}
for line in open(recorded):
    key, _, value = line.strip().partition("=")
    values[key] = float(value)

def ticks(name):
    before, after = collections.Counter(), collections.Counter()
    for path, counter in ((f"{results}/{name}.before", before), (f"{results}/{name}.after", after)):
        for line in open(path):
            thread, value = line.rsplit(" ", 1)
            counter[thread] += int(value)
    return {k: after[k] - before[k] for k in after}

def per_request_us(ticks_used, requests):
    return ticks_used / tick * 1e6 / requests

rows = []
for name, label in (("bare", "bare"), ("sqlite", "metahook, SQLite"), ("postgres", "metahook, PostgreSQL")):
    if name == "postgres" and not postgres:
        continue
    t = ticks(name)
    requests = values[f"{name}.rps"] * secs
    machine = t.pop("machine:busy") + t["machine:idle"] + t["machine:steal"]
    idle, steal = t.pop("machine:idle") / machine, t.pop("machine:steal") / machine
    database = sum(v for k, v in t.items() if k.startswith("postgres"))
    server = {k: v for k, v in t.items() if not k.startswith("postgres")}
    wrk = values[f"{name}.wrk_cpu"] * 1e6 / requests
    cost = per_request_us(sum(server.values()), requests)
    db = per_request_us(database, requests)
    ceiling = cores * 1e6 / (cost + wrk + db)
    threads = collections.Counter()
    for k, v in server.items():
        group = k if k in ("tokio-rt-worker", "metahook-inbox") else "other"
        threads[group] += v
    detail = ", ".join(f"{k} {per_request_us(v, requests):.1f}" for k, v in sorted(threads.items()) if v)
    rows.append((label, values[f"{name}.rps"], cost, wrk, db, idle, steal, ceiling, detail))

bare_ceiling = rows[0][7]
print()
print(f"{'':22} {'req/s':>9} {'server':>8} {'wrk':>7} {'postgres':>9} {'idle':>6} {'steal':>6} {'ceiling':>9} {'ceiling':>8}")
print(f"{'':22} {'':>9} {'us/req':>8} {'us/req':>7} {'us/req':>9} {'':>6} {'':>6} {'req/s':>9} {'vs bare':>8}")
for label, rps, cost, wrk, db, idle, steal, ceiling, _ in rows:
    print(f"{label:22} {rps:9.0f} {cost:8.1f} {wrk:7.1f} {db:9.1f} {idle:6.1%} {steal:6.1%} {ceiling:9.0f} {ceiling / bare_ceiling:8.2f}")
print()
print("server CPU by thread, microseconds per request:")
for label, *_, detail in rows:
    print(f"  {label}: {detail}")
EOF
}

main() {
    require_tools wrk python3 curl
    mkdir -p "$RESULTS"
    RESULTS=$(realpath "$RESULTS")
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/metahook-cost.XXXXXX")
    trap cleanup_servers EXIT
    if [[ $BUILD -eq 0 ]]; then
        log "BENCH_BUILD=0: using the binaries as they are"
    else
        cargo build --release -p metahook -p metahook-bench-bare
    fi
    [[ -x $METAHOOK_BIN && -x $BARE_BIN ]] || die "no $METAHOOK_BIN or $BARE_BIN"
    describe_machine "$WORK" >"$RESULTS/machine.txt"

    make_body "$WORK/body.json" 1024
    SIGNATURE=$(sign "$WORK/body.json")
    write_wrk_script "$WORK/body.json" "$SIGNATURE" "$WORK/post.lua"

    start_bare
    log "bare: wrk, $CONNECTIONS connections, $SECS s"
    measure bare "$BARE_PORT" "$BARE_PID"
    stop_bare

    start_metahook sqlite "$PORT" "sqlite://$WORK/metahook.db" METAHOOK_PIPELINE=false
    probe "$PORT"
    log "metahook on SQLite, pipeline off: wrk, $CONNECTIONS connections, $SECS s"
    measure sqlite "$PORT" "${SERVER_PID[sqlite]}"
    stop_metahook sqlite

    if [[ $POSTGRES -eq 1 ]]; then
        start_postgres
        start_metahook postgres "$PORT" "$(fresh_database cost)" METAHOOK_PIPELINE=false
        probe "$PORT"
        log "metahook on PostgreSQL, pipeline off: wrk, $CONNECTIONS connections, $SECS s"
        measure postgres "$PORT" "${SERVER_PID[postgres]}"
        stop_metahook postgres
    fi

    report | tee "$RESULTS/summary.txt"
    log "raw outputs and this table: $RESULTS/"
}

main "$@"
