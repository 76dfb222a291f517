#!/usr/bin/env bash
# bench/flood.sh: whether a flood of wrongly signed requests slows down valid deliveries
# (issue 6).
#
# What it measures. The release `metahook serve` on a fresh SQLite database, pipeline on, gets
# bench/run.sh's body: one signed, 1,024-byte Messenger text delivery. oha posts it at a fixed
# RATE (default 1,000/s) on CONNECTIONS connections for LATENCY_SECS, with --latency-correction
# (each latency counts from when the request was due, not from when it was sent), twice, each
# time on a fresh server and database:
#   1. alone;
#   2. during a flood: wrk -t1 -cFLOOD_CONNECTIONS posts the same body with a wrong signature as
#      fast as it can, from WARMUP_SECS before oha starts until after it ends;
#   3. during the same flood sent from another address (FLOOD_ADDRESS), with the defaults.
# Runs 1 and 2 set reject_limit_per_address = 0: both generators connect from 127.0.0.1, so with
# the cap on, the flood would get the valid deliveries answered 429 as well. With it off, every
# flood request costs the server what a flood spread over many addresses would: its body is read
# whole and its signature checked before the 401. Run 3 is the flood from one other address as
# the default cap (50 rejections a second) meets it: past the cap, 429 without reading the body.
# For it the script adds FLOOD_ADDRESS to the loopback interface (root only; the run is skipped
# otherwise, and the address removed at the end) and the server listens on 0.0.0.0:PORT, since a
# connection to an address of its own leaves from that address. (The cap itself is tested in
# crates/metahook/tests/it/limits.rs.)
#
# How to read the output. One table: p50, p99 and p99.9 of the valid deliveries alone and during
# the flood, and flood/alone; the rate oha achieved (well under RATE means the rate was not held
# and the percentiles are queueing); the flood's own rate and answers; what the server counted:
# its 401s and its limit rejections. Below the table, the store check: the deliveries stored
# must equal the 200s oha saw plus the probe's one, as nothing of the flood may be stored; then
# what the server logged at WARN and ERROR. The generators share the machine's cores with the
# server, so the flood competes with the valid deliveries for CPU before it reaches the server:
# every figure is of the whole machine, and on 2 cores runs vary by 15-50%. Raw outputs and
# logs: target/bench/<time>-flood/.
#
# Usage: bash bench/flood.sh [--help]. Paths are from the repo root. Runs for about a minute.
# Exit status: 0 the store check passed, 1 it failed, 2 setup failed.

set -Eeuo pipefail
trap 'log "failed: line $LINENO: $BASH_COMMAND"; exit 2' ERR
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE=${BENCH_RATE:-1000}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
LATENCY_SECS=${BENCH_LATENCY_SECS:-15}
FLOOD_CONNECTIONS=${BENCH_FLOOD_CONNECTIONS:-64}
WARMUP_SECS=${BENCH_WARMUP_SECS:-3}
FLOOD_ADDRESS=${BENCH_FLOOD_ADDRESS:-10.200.0.1}
PORT=${BENCH_METAHOOK_PORT:-3930}
BUILD=${BENCH_BUILD:-1}
KEEP=${BENCH_KEEP:-0}
METAHOOK_BIN=${METAHOOK_BIN:-target/release/metahook}
RESULTS=${BENCH_RESULTS_DIR:-target/bench/$(date +%Y%m%d-%H%M%S)-flood}

# Fixed so that runs are comparable; they guard nothing but this benchmark's own server.
SECRET=metahook-bench-app-secret
VERIFY_TOKEN=metahook-bench-verify-token

WORK=""
SIGNATURE=""
ADDED_ADDRESS=""

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    cat <<EOF
Environment (default):
  BENCH_RATE ($RATE): valid deliveries per second   BENCH_CONNECTIONS ($CONNECTIONS): oha's
  BENCH_LATENCY_SECS ($LATENCY_SECS): how long oha runs
  BENCH_FLOOD_CONNECTIONS ($FLOOD_CONNECTIONS): wrk's   BENCH_WARMUP_SECS ($WARMUP_SECS): flood before oha
  BENCH_FLOOD_ADDRESS ($FLOOD_ADDRESS): where run 3's flood comes from; BENCH_FLOOD_ADDRESS= skips it
  BENCH_METAHOOK_PORT ($PORT)
  BENCH_BUILD=0: use the binary as it is   METAHOOK_BIN: another binary
  BENCH_COMMIT: the commit that binary was built from, for machine.txt
  BENCH_KEEP=1: keep the temporary database   BENCH_RESULTS_DIR: where raw outputs go
EOF
}

# --- measurements ---------------------------------------------------------------------------

# run_oha NAME: valid deliveries at RATE, latency corrected; records NAME.oha_*.
run_oha() {
    local name=$1 out="$RESULTS/$1-oha.json"
    log "$name: oha at $RATE requests/s on $CONNECTIONS connections, ${LATENCY_SECS} s"
    oha --no-tui "${OHA_FLAGS[@]}" -c "$CONNECTIONS" -t 10s -m POST -z "${LATENCY_SECS}s" \
        -q "$RATE" --latency-correction \
        -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$SIGNATURE" \
        -D "$WORK/body.json" "http://127.0.0.1:$PORT/meta/webhook" >"$out"
    parse_oha "$out" | while read -r field value; do record "$name" "oha_$field" "$value"; done
}

# run_flood NAME SECS HOST: wrongly signed POSTs to HOST as fast as wrk goes; records
# NAME.flood_*.
run_flood() {
    local name=$1 secs=$2 host=$3 out="$RESULTS/$1-wrk.txt"
    wrk -t1 -c"$FLOOD_CONNECTIONS" -d"${secs}s" --timeout 10s --latency \
        -s "$WORK/forged.lua" "http://$host:$PORT/meta/webhook" >"$out"
    parse_wrk "$out" | while read -r field value; do record "$name" "flood_$field" "$value"; done
}

# Records what the server on PORT says under NAME: stored deliveries, its 401s, its limit
# rejections, and its peak memory.
record_server() {
    local name=$1 metrics
    record "$name" stored_deliveries "$(status_value "$PORT" .store.deliveries)"
    metrics=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/metrics")
    record "$name" server_401 "$(awk '
        /^metahook_http_requests_total\{route="\/meta\/webhook",method="POST",status="401"\}/ {
            n = $2 } END { print n + 0 }' <<<"$metrics")"
    record "$name" limit_rejections "$(awk '
        /^metahook_limit_rejections_total\{/ { n += $2 } END { print n + 0 }' <<<"$metrics")"
    record "$name" peak_rss_kib "$(awk '/^VmHWM:/ { print $2 }' "/proc/${SERVER_PID[$name]}/status")"
}

# measure NAME [FLOOD_HOST]: a fresh server and database, oha at RATE, with a flood sent to
# FLOOD_HOST if given. A flood to 127.0.0.1 runs with the rejection cap off, one to another
# address with the defaults.
measure() {
    local name=$1 flood=${2-} flooding="" settings=(METAHOOK_REJECT_LIMIT_PER_ADDRESS=0)
    if [[ -n $flood && $flood != 127.0.0.1 ]]; then
        settings=(METAHOOK_LISTEN="0.0.0.0:$PORT")
    fi
    start_metahook "$name" "$PORT" "sqlite://$WORK/$name.db" "${settings[@]}"
    probe "$PORT"
    if [[ -n $flood ]]; then
        log "$name: flood of wrong signatures to $flood, wrk -t1 -c$FLOOD_CONNECTIONS, from ${WARMUP_SECS} s before"
        run_flood "$name" $((LATENCY_SECS + 2 * WARMUP_SECS)) "$flood" &
        flooding=$!
        sleep "$WARMUP_SECS"
    fi
    run_oha "$name"
    if [[ -n $flooding ]]; then
        wait "$flooding" || die "$name: wrk failed"
    fi
    check_running "$name" oha
    record_server "$name"
    stop_metahook "$name"
}

# --- report ---------------------------------------------------------------------------------

describe_run() {
    {
        describe_machine "$WORK"
        echo "wrk: $({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')"
        echo "oha: $(oha --version)"
        echo "body: 1024 bytes; valid: oha -c$CONNECTIONS -q $RATE for ${LATENCY_SECS} s," \
            "latency corrected; flood: wrk -t1 -c$FLOOD_CONNECTIONS, wrong signature," \
            "from ${WARMUP_SECS} s before; reject_limit_per_address = 0 in runs 1 and 2;" \
            "run 3: the flood from ${FLOOD_ADDRESS:-nowhere (skipped)}, defaults"
    } >"$RESULTS/machine.txt"
}

# Prints the table from $WORK/results; exits 1 if the store check fails.
report() {
    python3 - "$WORK/results" "$RATE" "$OHA_WAITS" "$CONNECTIONS" <<'EOF'
import math, sys

results = dict(line.rstrip("\n").split("=", 1) for line in open(sys.argv[1]))
rate, oha_waits, connections = float(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
get = lambda key: float(results.get(key) or "nan")
failures = []

def fmt(value):
    if math.isnan(value):
        return f"{'-':>13}"
    return f"{value:>13,.0f}" if abs(value) >= 100 else f"{value:>13.2f}"

def row(label, unit, values):
    print(f"{label:<36}{unit:>7}" + "".join(fmt(v) for v in values))

runs = ["alone", "flood"] + (["capped"] if "capped.oha_p99" in results else [])
each = lambda key: [get(f"{name}.{key}") for name in runs]

# Columns: each run, then each flooded run over the run alone.
def row_with_ratios(label, unit, key):
    values = each(key)
    row(label, unit, values + [v / values[0] for v in values[1:]])

print()
print("capped: the flood from another address, rejection cap at its default" if "capped" in runs
      else "capped: skipped (BENCH_FLOOD_ADDRESS empty, or not root)")
header = runs + [f"{name}/alone" for name in runs[1:]]
print(f"{'':<36}{'unit':>7}" + "".join(f"{h:>13}" for h in header))
for name, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
    row_with_ratios(f"valid deliveries {label} at {rate:,.0f}/s", "ms", f"oha_{name}")
row("  rate achieved", "req/s", each("oha_rps"))
row("  answered other than 200, errors", "req",
    [a + b for a, b in zip(each("oha_other"), each("oha_errors"))])
row("flood, wrong signatures", "req/s", [math.nan] + each("flood_rps")[1:])
row("  answered other than 2xx (wrk)", "req", [math.nan] + each("flood_other")[1:])
row("  401s counted by the server", "req", each("server_401"))
row("limit rejections counted", "req", each("limit_rejections"))
row("peak memory (VmHWM)", "MiB", [v / 1024 for v in each("peak_rss_kib")])

# Acknowledged means stored, and nothing wrongly signed is: stored = 200s + the probe's one.
print()
for name in runs:
    stored, acked = get(f"{name}.stored_deliveries"), get(f"{name}.oha_ok") + 1
    errors = get(f"{name}.oha_errors") + get(f"{name}.oha_other")
    # Without -w, oha drops the requests in flight at its deadline: one per connection.
    slack = errors + (0 if oha_waits else connections)
    if math.isnan(stored) or stored < acked:
        verdict = "LOST: fewer stored than acknowledged"
    elif stored > acked + slack:
        verdict = "EXTRA: more stored than valid deliveries sent"
    else:
        verdict = "ok"
    print(f"stored {name:<6}{stored:>10,.0f} deliveries for {acked:>10,.0f} acknowledged: {verdict}")
    if verdict != "ok":
        failures.append(f"store check {name}")
print()
print("store checks passed" if not failures else "FAILED: " + ", ".join(failures))
sys.exit(1 if failures else 0)
EOF
}

# Adds FLOOD_ADDRESS to the loopback interface for run 3, unless it is empty, already there
# (then it is used as it is) or this user may not; says why when it does not.
add_flood_address() {
    [[ -n $FLOOD_ADDRESS ]] || return 1
    if ip -o addr show dev lo | grep -q " $FLOOD_ADDRESS/"; then
        return 0
    fi
    if [[ $(id -u) != 0 ]] || ! ip addr add "$FLOOD_ADDRESS/32" dev lo 2>/dev/null; then
        log "run 3 skipped: could not add $FLOOD_ADDRESS to lo (needs root)"
        return 1
    fi
    ADDED_ADDRESS=$FLOOD_ADDRESS
    trap 'cleanup_metahooks; ip addr del "$ADDED_ADDRESS/32" dev lo' EXIT
}

main() {
    case ${1-} in
        "") ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    cd "$(dirname "${BASH_SOURCE[0]}")/.."

    require_tools wrk oha python3 curl jq
    detect_oha_flags
    build_metahook

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/metahook-flood.XXXXXX")
    trap cleanup_metahooks EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RESULTS"
    : >"$WORK/results"
    describe_run
    warn_if_tmpfs "$WORK"

    make_body "$WORK/body.json" 1024
    SIGNATURE=$(sign "$WORK/body.json")
    write_wrk_script "$WORK/body.json" "$(tr 0-9a-f 1-9a-f0 <<<"$SIGNATURE")" "$WORK/forged.lua"

    measure alone
    measure flood 127.0.0.1
    if add_flood_address; then
        measure capped "$FLOOD_ADDRESS"
    fi

    local status=0
    report | tee "$RESULTS/summary.txt" || status=$?
    summarize_logs "$RESULTS" | tee -a "$RESULTS/summary.txt"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
    { echo; grep '^disk\|^load' "$RESULTS/machine.txt"; } | tee -a "$RESULTS/summary.txt"
    log "raw outputs, server logs and this table: $RESULTS/"
    exit "$status"
}

main "$@"
