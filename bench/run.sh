#!/usr/bin/env bash
# bench/run.sh: how fast metahook accepts signed webhooks, next to a server that does nothing.
#
# What it measures. Two servers get the same requests: POST /meta/webhook with one signed,
# 1,024-byte Messenger text delivery. "metahook" is the release binary on a fresh SQLite database:
# it checks the signature and makes the body durable before answering 200. "bare" is
# bench/bare, an axum server that reads the body and answers 200 without either. For each:
#   1. throughput at saturation: 64 connections as fast as they go, once with wrk, once with oha;
#   2. latency at a fixed 5,000 requests/s with oha, corrected for coordinated omission (each
#      latency counts from when the request was due, not from when it was sent), p50/p99/p99.9;
#   3. peak resident memory (VmHWM) of each server process over the whole run.
# Connections, rate, durations and body size are defaults that --help shows how to change.
# Bare goes first, while metahook is idle. Between metahook's phases the script waits for its
# pipeline to finish the backlog (store.pending = 0), or to stop shrinking it, so each phase
# starts from rest; how long that took is printed under the table.
#
# How to read the output. One table: a row per figure, the two servers, metahook/bare, and the
# issue's target with "met" or "MISSED". Throughput wants a ratio >= 0.50; p99 at 5,000/s wants
# at most 5 ms or twice bare's p99, whichever is larger; memory wants under 100 MiB. A fixed-rate
# row marked "rate not held" means the pair could not sustain the rate, so its percentiles are
# queueing, not service time. Below the table, "stored" compares the deliveries metahook has in
# its store with the 200s the load generators saw: fewer stored than acknowledged is data loss.
# The load generators share the machine's cores with the server under test, so every figure is
# of the pair; on 2 cores runs vary by 15-50%. Raw outputs are kept in target/bench/<time>/.
#
# Usage: bash bench/run.sh [--install] [--self-test] [--help]. Paths are from the repo root.
# Each server's log is kept next to the raw outputs. Helpers shared with bench/pipeline.sh and
# bench/postgres.sh are in bench/lib.sh.
# Exit status: 0 every target met, 1 a target missed or the store check failed, 2 setup failed.

# shellcheck disable=SC2317  # functions run through phase's "$@" and the EXIT trap
set -Eeuo pipefail
trap 'log "failed: line $LINENO: $BASH_COMMAND"; exit 2' ERR
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECTIONS=${BENCH_CONNECTIONS:-64}
SATURATION_SECS=${BENCH_SATURATION_SECS:-10}
RATE=${BENCH_RATE:-5000}
LATENCY_SECS=${BENCH_LATENCY_SECS:-15}
WARMUP_SECS=${BENCH_WARMUP_SECS:-3}
DRAIN_SECS=${BENCH_DRAIN_SECS:-120}
STALL_SECS=${BENCH_STALL_SECS:-15}
BODY_BYTES=${BENCH_BODY_BYTES:-1024}
METAHOOK_PORT=${BENCH_METAHOOK_PORT:-3900}
BARE_PORT=${BENCH_BARE_PORT:-3901}
BUILD=${BENCH_BUILD:-1}
KEEP=${BENCH_KEEP:-0}
METAHOOK_BIN=${METAHOOK_BIN:-target/release/metahook}
BARE_BIN=${BARE_BIN:-target/release/metahook-bench-bare}
RESULTS=${BENCH_RESULTS_DIR:-target/bench/$(date +%Y%m%d-%H%M%S)}

# Fixed so that runs are comparable; they guard nothing but this benchmark's own server.
SECRET=metahook-bench-app-secret
VERIFY_TOKEN=metahook-bench-verify-token

INSTALL=0
SELF_TEST=0
WORK=""
declare -A PID=()

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    cat <<EOF
Flags:
  --install    install what is missing: wrk (apt-get) and oha (cargo install oha --locked, ~6 min)
  --self-test  check this script without the service: the bare server plays both roles, so the
               figures say nothing about metahook
Environment (default):
  BENCH_CONNECTIONS ($CONNECTIONS)  BENCH_SATURATION_SECS ($SATURATION_SECS)
  BENCH_RATE ($RATE)  BENCH_LATENCY_SECS ($LATENCY_SECS)  BENCH_WARMUP_SECS ($WARMUP_SECS)
  BENCH_DRAIN_SECS ($DRAIN_SECS): longest wait for metahook's backlog between phases
  BENCH_STALL_SECS ($STALL_SECS): stop waiting sooner when the backlog has not shrunk for this long
  BENCH_BODY_BYTES ($BODY_BYTES)  BENCH_METAHOOK_PORT ($METAHOOK_PORT)  BENCH_BARE_PORT ($BARE_PORT)
  BENCH_BUILD=0: use the binaries as they are   METAHOOK_BIN, BARE_BIN: other binaries
  BENCH_COMMIT: the commit those binaries were built from, for machine.txt
  BENCH_KEEP=1: keep the temporary database     BENCH_RESULTS_DIR: where raw outputs go
EOF
}

# --- tools and build ------------------------------------------------------------------------

check_tools() {
    local missing=() tool
    command -v wrk >/dev/null || missing+=(wrk)
    command -v oha >/dev/null || missing+=(oha)
    command -v python3 >/dev/null || missing+=(python3)
    command -v curl >/dev/null || missing+=(curl)
    [[ ${#missing[@]} -eq 0 ]] && return
    if [[ $INSTALL -eq 1 ]]; then
        install_tools "${missing[@]}"
        return
    fi
    log "missing: ${missing[*]}. Install with 'bash bench/run.sh --install', or by hand:"
    for tool in "${missing[@]}"; do
        log "  $(install_command "$tool")"
    done
    exit 2
}

install_tools() {
    local tool
    for tool in "$@"; do
        log "running: $(install_command "$tool")"
        case $tool in
            oha) cargo install oha --locked ;;
            *) apt-get update -qq && apt-get install -y "$tool" ;;
        esac
    done
}

build() {
    if [[ $BUILD -eq 0 ]]; then
        log "BENCH_BUILD=0: using the binaries as they are"
    elif [[ $SELF_TEST -eq 1 ]]; then
        cargo build --release -p metahook-bench-bare
    else
        cargo build --release -p metahook -p metahook-bench-bare
    fi
    [[ -x $BARE_BIN ]] || die "no $BARE_BIN"
    [[ $SELF_TEST -eq 1 || -x $METAHOOK_BIN ]] || die "no $METAHOOK_BIN"
}

# --- servers --------------------------------------------------------------------------------

port_of() { [[ $1 == metahook ]] && echo "$METAHOOK_PORT" || echo "$BARE_PORT"; }
url_of() { echo "http://127.0.0.1:$(port_of "$1")/meta/webhook"; }

# True when the role is played by the real service (not in --self-test).
is_service() { [[ $1 == metahook && $SELF_TEST -eq 0 ]]; }

start_server() {
    local role=$1 port bin
    port=$(port_of "$role")
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
        die "something already answers on 127.0.0.1:$port; set BENCH_${role^^}_PORT"
    fi
    if is_service "$role"; then
        # Run from the work directory so that nothing the service writes lands in the repo.
        bin=$(realpath "$METAHOOK_BIN")
        (cd "$WORK" && exec env -u METAHOOK_CONFIG \
            METAHOOK_DATABASE_URL="sqlite://$WORK/bench.db" \
            METAHOOK_APP_SECRET="$SECRET" \
            METAHOOK_VERIFY_TOKEN="$VERIFY_TOKEN" \
            METAHOOK_LISTEN="127.0.0.1:$port" \
            "$bin" serve) >"$RESULTS/$role.log" 2>&1 &
    else
        "$BARE_BIN" "127.0.0.1:$port" >"$RESULTS/$role.log" 2>&1 &
    fi
    PID[$role]=$!
    wait_ready "$role"
    log "$role ready on 127.0.0.1:$port (pid ${PID[$role]}, $(cat "/proc/${PID[$role]}/comm"))"
}

wait_ready() {
    local role=$1 tries=0 code
    while ((tries++ < 100)); do
        if ! running "${PID[$role]}"; then
            tail -20 "$RESULTS/$role.log" >&2
            die "$role exited at start (its log is above)"
        fi
        if is_service "$role"; then
            code=$(curl -s -o /dev/null -w '%{http_code}' \
                "http://127.0.0.1:$(port_of "$role")/healthz" || true)
        else
            code=$(post "$role" "$SIGNATURE" /dev/null || true)
        fi
        [[ $code == 200 ]] && return
        sleep 0.1
    done
    tail -20 "$RESULTS/$role.log" >&2
    die "$role did not answer 200 within 10 s"
}

stop_servers() {
    local role pid
    for role in "${!PID[@]}"; do
        pid=${PID[$role]}
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    PID=()
}

cleanup() {
    stop_servers
    if [[ -n $WORK && $KEEP -eq 1 ]]; then
        log "kept $WORK"
    elif [[ -n $WORK ]]; then
        rm -rf "$WORK"
    fi
}

# One signed POST of the body; prints the status code. $3 captures the response body.
post() {
    local role=$1 signature=$2 out=${3:-/dev/null}
    curl -s -o "$out" -w '%{http_code}' --max-time 5 -X POST \
        -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$signature" \
        --data-binary "@$WORK/body.json" "$(url_of "$role")"
}

# Before measuring anything: the body must be accepted, and for the service a wrong signature
# must be refused, or the comparison would be of two servers that both skip the work.
probe() {
    local role=$1 code
    code=$(post "$role" "$SIGNATURE" "$WORK/probe.out")
    if [[ $code != 200 ]]; then
        die "$role answered $code to the signed body: $(head -c 300 "$WORK/probe.out")"
    fi
    record "$role" probe_ok 1
    if is_service "$role"; then
        code=$(post "$role" "$(tr 0-9a-f 1-9a-f0 <<<"$SIGNATURE")")
        [[ $code == 401 ]] || die "metahook answered $code, not 401, to a wrong signature"
    fi
}

# Prints a field of metahook's status JSON, such as store.deliveries; empty when unavailable.
# The status counts rows of a store that grows by gigabytes here, so it may take a while.
status_field() {
    { curl -s --max-time 30 "http://127.0.0.1:$METAHOOK_PORT/meta/webhook/status" || true; } |
        python3 -c '
import json, sys
try:
    value = json.load(sys.stdin)
    for key in sys.argv[1].split("."):
        value = value[key]
    print(value)
except Exception:
    pass
' "$1"
}

# Waits until metahook's pipeline has no backlog, so the next phase starts from rest, and
# records how long that took after phase $1. Gives up after DRAIN_SECS, or sooner when the
# backlog has not shrunk for STALL_SECS: then the pipeline is not working it off at all.
wait_drained() {
    local phase=$1 start=$SECONDS pending lowest="" progress=$SECONDS
    while ((SECONDS - start < DRAIN_SECS && SECONDS - progress < STALL_SECS)); do
        pending=$(status_field store.pending)
        if [[ -z $pending ]]; then
            log "warning: metahook's status has no store.pending; not waiting for the backlog"
            return
        elif [[ $pending == 0 ]]; then
            record metahook "drain_$phase" "$((SECONDS - start))"
            return
        elif [[ -z $lowest ]] || ((pending < lowest)); then
            lowest=$pending progress=$SECONDS
        fi
        sleep 0.5
    done
    log "warning: metahook still has $pending pending after $((SECONDS - start)) s; going on"
    record metahook "drain_$phase" "gave up after $((SECONDS - start))"
}

check_alive() {
    if ! running "${PID[$1]}"; then
        tail -20 "$RESULTS/$1.log" >&2
        die "$1 exited during $2 (its log is above)"
    fi
}

peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/${PID[$1]}/status"; }

# --- load generators ------------------------------------------------------------------------

run_wrk() {
    local role=$1 name=$2 secs=$3 out
    out="$RESULTS/$role-wrk-$name.txt"
    log "$role: wrk $name, $CONNECTIONS connections, ${secs} s"
    wrk -t2 -c"$CONNECTIONS" -d"${secs}s" --timeout 10s --latency -s "$WORK/post.lua" \
        "$(url_of "$role")" >"$out"
    parse_wrk "$out" |
        while read -r field value; do record "$role" "wrk_${name}_$field" "$value"; done ||
        die "no counts in $out"
}

# oha with the signed POST; extra arguments select the mode. Raw JSON goes to the results.
oha_post() {
    local role=$1 name=$2
    shift 2
    oha --no-tui "${OHA_FLAGS[@]}" -c "$CONNECTIONS" -t 10s -m POST \
        -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$SIGNATURE" \
        -D "$WORK/body.json" "$@" "$(url_of "$role")" >"$RESULTS/$role-oha-$name.json"
    parse_oha "$RESULTS/$role-oha-$name.json" |
        while read -r field value; do record "$role" "oha_${name}_$field" "$value"; done
}

run_oha_saturation() {
    log "$1: oha saturation, $CONNECTIONS connections, ${SATURATION_SECS} s"
    oha_post "$1" saturation -z "${SATURATION_SECS}s"
}

run_oha_rate() {
    log "$1: oha at $RATE requests/s, ${LATENCY_SECS} s, latency corrected"
    oha_post "$1" rate -z "${LATENCY_SECS}s" -q "$RATE" --latency-correction
}

# Phases are named like the keys they record: probe_ok, wrk_warmup_rps, oha_rate_p99, ...
bench_server() {
    local role=$1
    phase "$role" probe probe "$role"
    phase "$role" wrk_warmup run_wrk "$role" warmup "$WARMUP_SECS"
    phase "$role" wrk_saturation run_wrk "$role" saturation "$SATURATION_SECS"
    phase "$role" oha_saturation run_oha_saturation "$role"
    phase "$role" oha_rate run_oha_rate "$role"
    record "$role" peak_rss_kib "$(peak_rss_kib "$role")"
}

# Runs one phase ($3...). For the service, then waits for its backlog and records how many
# deliveries the phase added to the store, which report compares with the 200s counted.
phase() {
    local role=$1 name=$2 before after
    shift 2
    if ! is_service "$role"; then
        "$@"
        check_alive "$role" "$name"
        return
    fi
    before=$(status_field store.deliveries)
    "$@"
    check_alive "$role" "$name"
    wait_drained "$name"
    after=$(status_field store.deliveries)
    if [[ -n $before && -n $after ]]; then
        record "$role" "stored_$name" "$((after - before))"
    fi
}

# --- report ---------------------------------------------------------------------------------

describe_run() {
    {
        describe_machine "$WORK"
        echo "wrk: $({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')"
        echo "oha: $(oha --version)"
        echo "body: $BODY_BYTES bytes, connections: $CONNECTIONS," \
            "saturation: ${SATURATION_SECS} s, rate: $RATE/s for ${LATENCY_SECS} s," \
            "warm-up: ${WARMUP_SECS} s"
        if [[ $SELF_TEST -eq 1 ]]; then echo "SELF-TEST: the bare server played metahook too"; fi
    } >"$RESULTS/machine.txt"
}

# Prints the table from $WORK/results; exits 1 if a target is missed or the store check fails.
report() {
    python3 - "$WORK/results" "$RATE" "$CONNECTIONS" "$SELF_TEST" "$OHA_WAITS" <<'EOF'
import math, sys

results = dict(line.rstrip("\n").split("=", 1) for line in open(sys.argv[1]))
rate, connections = float(sys.argv[2]), int(sys.argv[3])
self_test, oha_waits = sys.argv[4] == "1", sys.argv[5] == "1"
get = lambda role, name: float(results.get(f"{role}.{name}") or "nan")
failures = []

def row(label, unit, bare, meta, target="", verdict=None):
    ratio = meta / bare if bare else math.nan
    mark = "" if verdict is None else ("met" if verdict else "MISSED")
    if verdict is False:
        failures.append(label)
    print(f"{label:<26}{unit:>6}{bare:>12.2f}{meta:>12.2f}{ratio:>8.2f}  {target} {mark}")

print()
if self_test:
    print("SELF-TEST: the bare server played metahook too; these figures say nothing about it.")
print(f"{'':<26}{'unit':>6}{'bare':>12}{'metahook':>12}{'ratio':>8}  target")
for tool in ("wrk", "oha"):
    bare, meta = get("bare", f"{tool}_saturation_rps"), get("metahook", f"{tool}_saturation_rps")
    label = f"saturation {tool} c{connections}"
    row(label, "req/s", bare, meta, ">= 0.50 x bare", meta >= bare / 2)

held = {r: get(r, "oha_rate_rps") >= 0.97 * rate for r in ("bare", "metahook")}
for name, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
    bare, meta = get("bare", f"oha_rate_{name}"), get("metahook", f"oha_rate_{name}")
    if name == "p99":
        limit = max(5.0, 2 * bare)
        row(f"{label} at {rate:.0f}/s", "ms", bare, meta, f"<= {limit:.2f} ms", meta <= limit)
    else:
        row(f"{label} at {rate:.0f}/s", "ms", bare, meta)
row("rate achieved", "req/s", get("bare", "oha_rate_rps"), get("metahook", "oha_rate_rps"),
    "" if all(held.values()) else "rate not held: " +
    ", ".join(r for r, ok in held.items() if not ok))
mib = lambda role: get(role, "peak_rss_kib") / 1024
row("peak memory (VmHWM)", "MiB", mib("bare"), mib("metahook"), "< 100 MiB", mib("metahook") < 100)

# Every answer other than 200 makes the figures meaningless: count them all.
print()
for role in ("bare", "metahook"):
    keys = [k for k in results if k.startswith(role + ".") and k.endswith(("_other", "_errors"))]
    bad = sum(float(results[k]) for k in keys)
    if bad:
        print(f"{role}: {bad:.0f} requests not answered 200: MISSED")
        failures.append(f"{role} non-200")
    else:
        print(f"{role}: every request answered 200")

drains = {k.split(".drain_")[1]: v for k, v in results.items() if ".drain_" in k}
if drains:
    print("metahook's backlog drained after each phase in (s):",
          ", ".join(f"{phase} {secs}" for phase, secs in drains.items()))

# Acknowledged means stored, and nothing else is stored. Each phase must have stored at least
# the requests it saw acknowledged. It may store more: wrk drops the requests in flight at its
# deadline, up to one per connection, and oha does too without -w; a request that timed out may
# still be stored, even during the next phase. So the upper bound is checked on the totals. The
# probe alone is exact: one signed request stored, the wrongly signed one not.
phases = ("probe", "wrk_warmup", "wrk_saturation", "oha_saturation", "oha_rate")
total_stored = total_acked = total_slack = 0
for phase in phases:
    stored = results.get(f"metahook.stored_{phase}")
    if not stored:
        continue
    stored, acked = int(stored), int(get("metahook", f"{phase}_ok"))
    slack = 0 if phase == "probe" else int(get("metahook", f"{phase}_errors"))
    if phase.startswith("wrk_") or (phase.startswith("oha_") and not oha_waits):
        slack += connections
    total_stored, total_acked, total_slack = (
        total_stored + stored, total_acked + acked, total_slack + slack)
    if stored < acked:
        # Every request carries the same bytes: a store that folds identical deliveries into
        # one would show here too.
        verdict = "LOST: fewer stored than acknowledged"
    elif phase == "probe" and stored != acked:
        verdict = "EXTRA: the wrongly signed request was stored"
    else:
        verdict = "ok" if stored == acked else f"ok, {stored - acked} unacknowledged stored"
    print(f"stored in {phase:<15}{stored:>10} deliveries for {acked:>10} acknowledged: {verdict}")
    if not verdict.startswith("ok"):
        failures.append(f"store check {phase}")
if total_stored > total_acked + total_slack:
    print(f"stored in all phases {total_stored - total_acked} more than acknowledged, but only"
          f" {total_slack} requests went unanswered: EXTRA")
    failures.append("store check total")
if not self_test and not any(k.startswith("metahook.stored_") for k in results):
    print("stored: metahook's status gave no store.deliveries; not checked")

print()
print("all targets met" if not failures else "MISSED: " + ", ".join(failures))
sys.exit(1 if failures else 0)
EOF
}

main() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --install) INSTALL=1 ;;
            --self-test) SELF_TEST=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; exit 2 ;;
        esac
        shift
    done
    cd "$(dirname "${BASH_SOURCE[0]}")/.."

    check_tools
    detect_oha_flags
    build

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/metahook-bench.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RESULTS"
    describe_run
    warn_if_tmpfs "$WORK"

    make_body "$WORK/body.json" "$BODY_BYTES"
    SIGNATURE=$(sign "$WORK/body.json")
    write_wrk_script "$WORK/body.json" "$SIGNATURE" "$WORK/post.lua"

    start_server bare
    start_server metahook
    bench_server bare
    bench_server metahook

    local status=0
    report | tee "$RESULTS/summary.txt" || status=$?
    log "raw outputs, server logs and this table: $RESULTS/"
    exit "$status"
}

main "$@"
