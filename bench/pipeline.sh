#!/usr/bin/env bash
# bench/pipeline.sh: how fast metahook's pipeline works off a backlog on SQLite, and what running
# the pipeline costs ingest (issue 3).
#
# What it measures. Every measurement starts a release `metahook serve` on a fresh SQLite
# database in a temporary directory, and loads it with `metahook simulate`: realistic, signed
# Meta traffic (by default coherent conversations on Messenger, Instagram and WhatsApp: messages,
# echoes, delivery and read watermarks or statuses, reactions, edits), 50 events per POST.
#   (a) drain alone: a backlog of about 100,000 events is stored by an ingest-only server
#       (METAHOOK_PIPELINE=false), which is then stopped with SIGTERM and started again with the
#       pipeline on. Timed from that start until the status shows store.pending = 0: events/s is
#       store.events (distinct events stored) over that time, processed/s the same for
#       counters.processed. Done three times: conversations, every kind (`all`), and the
#       conversations again one event per POST (many small deliveries).
#   (b) drain while ingesting: the same conversations posted to a server whose pipeline runs
#       from the start. Reports the ingest rate (next to (a)'s, where nothing else ran), the
#       events applied per second while the load ran, what was left at its end and how long that
#       took to drain, and events/s from the first POST until nothing is pending.
#   (c) ingest with the pipeline off, then on: `wrk -t2 -c64` for 10 s with bench/run.sh's
#       fixed 1 KiB signed body (each request a new delivery; the pipeline sees one new event,
#       then duplicates), and `metahook simulate --concurrency 64 --batch 20` with unique
#       conversations. The ratio on/off is the cost of the pipeline to ingest.
#
# How to read the output. One table: a row per figure and the issue's target with "met" or
# "MISSED": at least 20,000 events/s drained, and ingest with the pipeline running at least 0.70
# of ingest alone. "first/second half" rows split a drain by backlog size: a rate that rises
# as the backlog shrinks means each step costs more with a longer backlog. Below the table, the
# store check (stored against acknowledged) and what the servers logged at WARN and ERROR. The
# load generators and the server share the machine's cores, so every figure is of the pair; on
# 2 cores runs vary by 15-50%. Raw outputs and every server's log: target/bench/<time>-pipeline/.
#
# Usage: bash bench/pipeline.sh [--help]. Paths are from the repo root. Runs for about 2 minutes.
# Exit status: 0 every target met, 1 a target missed or the store check failed, 2 setup failed.

set -Eeuo pipefail
trap 'log "failed: line $LINENO: $BASH_COMMAND"; exit 2' ERR
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONVERSATIONS=${BENCH_CONVERSATIONS:-11000}
ALL_EVENTS=${BENCH_ALL_EVENTS:-100000}
BATCH=${BENCH_BATCH:-50}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
LOAD_CONVERSATIONS=${BENCH_LOAD_CONVERSATIONS:-32000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
SATURATION_SECS=${BENCH_SATURATION_SECS:-10}
DRAIN_SECS=${BENCH_DRAIN_SECS:-300}
STALL_SECS=${BENCH_STALL_SECS:-30}
SEED=${BENCH_SEED:-20261203}
PORT=${BENCH_METAHOOK_PORT:-3910}
BUILD=${BENCH_BUILD:-1}
KEEP=${BENCH_KEEP:-0}
METAHOOK_BIN=${METAHOOK_BIN:-target/release/metahook}
RESULTS=${BENCH_RESULTS_DIR:-target/bench/$(date +%Y%m%d-%H%M%S)-pipeline}

# Fixed so that runs are comparable; they guard nothing but this benchmark's own server.
SECRET=metahook-bench-app-secret
VERIFY_TOKEN=metahook-bench-verify-token

WORK=""

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    cat <<EOF
Environment (default):
  BENCH_CONVERSATIONS ($CONVERSATIONS): conversations in (a) and (b)'s backlog, ~9.3 events each
  BENCH_ALL_EVENTS ($ALL_EVENTS): events in the backlog of every kind in (a)
  BENCH_BATCH ($BATCH): events per POST   BENCH_CONCURRENCY ($CONCURRENCY): POSTs in flight
  BENCH_LOAD_CONVERSATIONS ($LOAD_CONVERSATIONS): conversations posted by simulate in (c)
  BENCH_CONNECTIONS ($CONNECTIONS)  BENCH_SATURATION_SECS ($SATURATION_SECS): wrk in (c)
  BENCH_DRAIN_SECS ($DRAIN_SECS): longest wait for a drain
  BENCH_STALL_SECS ($STALL_SECS): give up sooner when the backlog has not shrunk for this long
  BENCH_SEED ($SEED)  BENCH_METAHOOK_PORT ($PORT)
  BENCH_BUILD=0: use the binary as it is   METAHOOK_BIN: another binary
  BENCH_COMMIT: the commit METAHOOK_BIN was built from, for machine.txt
  BENCH_KEEP=1: keep the temporary databases   BENCH_RESULTS_DIR: where raw outputs go
EOF
}

sqlite_url() { echo "sqlite://$WORK/$1.db"; }

# Removes database $1 once measured, unless BENCH_KEEP=1: a run writes gigabytes.
drop_database() { [[ $KEEP -eq 1 ]] || rm -f "$WORK/$1.db" "$WORK/$1.db"-*; }

# --- (a) drain alone ------------------------------------------------------------------------

# drain_sqlite NAME SIMULATE-ARGS...: drain_alone (bench/lib.sh) on a fresh SQLite database.
drain_sqlite() {
    local name=$1
    shift
    drain_alone "$name" "$PORT" "$(sqlite_url "$name")" "$@"
    drop_database "$name"
}

# --- (b) drain while ingesting --------------------------------------------------------------

# drain_while_ingesting NAME SIMULATE-ARGS...: posts the load to a server whose pipeline runs from
# the start; records the load, what was applied while it ran, and the drain after it.
drain_while_ingesting() {
    local name=$1 started ended status
    shift
    start_metahook "$name" "$PORT" "$(sqlite_url "$name")"
    started=$(now)
    simulate "$name-load" "$PORT" "$@"
    ended=$(now)
    status=$(status_json "$PORT")
    record_load "$name" "$name-load"
    record "$name" during_secs "$(seconds_between "$started" "$ended")"
    record "$name" during_processed "$(jq -r .counters.processed <<<"$status")"
    record "$name" during_pending_left "$(jq -r .store.pending <<<"$status")"
    time_drain "$name" "$PORT" "$started"
    stop_metahook "$name"
    drop_database "$name"
}

# --- (c) ingest with the pipeline off and on ------------------------------------------------

# ingest_wrk NAME PIPELINE: wrk at saturation with the fixed body, pipeline true or false.
ingest_wrk() {
    local name=$1 pipeline=$2 out="$RESULTS/$1-wrk.txt"
    start_metahook "$name" "$PORT" "$(sqlite_url "$name")" METAHOOK_PIPELINE="$pipeline"
    log "$name: wrk, $CONNECTIONS connections, ${SATURATION_SECS} s, pipeline $pipeline"
    wrk -t2 -c"$CONNECTIONS" -d"${SATURATION_SECS}s" --timeout 10s --latency \
        -s "$WORK/post.lua" "http://127.0.0.1:$PORT/meta/webhook" >"$out"
    check_running "$name" wrk
    parse_wrk "$out" | while read -r field value; do record "$name" "wrk_$field" "$value"; done
    record_store "$name"
    stop_metahook "$name"
    drop_database "$name"
}

# ingest_simulate NAME PIPELINE SIMULATE-ARGS...: the same with unique realistic events.
ingest_simulate() {
    local name=$1 pipeline=$2
    shift 2
    start_metahook "$name" "$PORT" "$(sqlite_url "$name")" METAHOOK_PIPELINE="$pipeline"
    simulate "$name-load" "$PORT" "$@"
    check_running "$name" simulate
    record_load "$name" "$name-load"
    record_store "$name"
    stop_metahook "$name"
    drop_database "$name"
}

# Records server $1's stored deliveries and backlog now.
record_store() {
    local status
    status=$(status_json "$PORT")
    record "$1" stored_deliveries "$(jq -r .store.deliveries <<<"$status")"
    record "$1" pending_left "$(jq -r .store.pending <<<"$status")"
}

# --- report ---------------------------------------------------------------------------------

describe_run() {
    {
        describe_machine "$WORK"
        echo "wrk: $({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')"
        echo "traffic: --conversation all, $CONVERSATIONS conversations, --batch $BATCH," \
            "--concurrency $CONCURRENCY, --seed $SEED; every kind: $ALL_EVENTS events"
        echo "(c): wrk -t2 -c$CONNECTIONS -d${SATURATION_SECS}s, 1,024-byte body;" \
            "simulate $LOAD_CONVERSATIONS conversations --batch 20 --concurrency 64"
    } >"$RESULTS/machine.txt"
}

# Prints the table from $WORK/results; exits 1 if a target is missed or the store check fails.
report() {
    python3 - "$WORK/results" "$RESULTS" "$CONNECTIONS" <<'EOF'
import math, sys

results = dict(line.rstrip("\n").split("=", 1) for line in open(sys.argv[1]))
get = lambda key: float(results.get(key) or "nan")
failures = []

def row(label, unit, value, target="", verdict=None, note="", name=""):
    mark = "" if verdict is None else ("met" if verdict else "MISSED")
    if verdict is False:
        failures.append(name or label.strip())
    text = f"{value:>12,.0f}" if abs(value) >= 100 else f"{value:>12.2f}"
    print(f"{label:<52}{unit:>8}{text}  {target} {mark}{note}")

def drain_rows(name, label):
    secs = get(f"{name}.drain_secs")
    events, processed = get(f"{name}.stored_events"), get(f"{name}.processed")
    print(f"{label}: {get(name + '.load_events'):,.0f} events in "
          f"{get(name + '.load_deliveries'):,.0f} deliveries")
    gave_up = f"{name}.drain_gave_up" in results
    row("  drain time", "s", secs, note="  (gave up: not drained)" if gave_up else "")
    row("  events stored per second", "ev/s", events / secs, ">= 20,000",
        events / secs >= 20000 and not gave_up, name=f"(a) {name}")
    row("  events processed per second", "ev/s", processed / secs)
    row("  deliveries split per second", "del/s", get(f"{name}.stored_deliveries") / secs)
    row("  metahook's CPU over the drain", "cores", get(f"{name}.cpu_secs") / secs)
    row("  first half of the backlog", "ev/s", get(f"{name}.first_half_events_per_sec"))
    row("  second half of the backlog", "ev/s", get(f"{name}.second_half_events_per_sec"))

def ratio_row(label, unit, off, on, name):
    row(f"  {label}, pipeline off", unit, off)
    row(f"  {label}, pipeline on", unit, on)
    row(f"  {label}, on / off", "ratio", on / off, ">= 0.70", on / off >= 0.70, name=name)

print()
print(f"{'':<52}{'unit':>8}{'value':>12}  target")
print("(a) drain alone (pipeline started on a stored backlog)")
drain_rows("drain_conversations", " conversations, 50 events per POST")
drain_rows("drain_all_kinds", " every kind, 50 events per POST")
drain_rows("drain_single", " conversations, 1 event per POST")

print("(b) drain while ingesting (pipeline on from the start), conversations")
b, a = "drain_ingesting", "drain_conversations"
ratio_row("ingest", "ev/s", get(f"{a}.load_events_per_sec"), get(f"{b}.load_events_per_sec"),
          "(b) ingest ratio")
during = get(f"{b}.during_secs")
row("  events applied per second during the load", "ev/s", get(f"{b}.during_processed") / during)
row("  pending at the end of the load", "items", get(f"{b}.during_pending_left"))
row("  drain after the load", "s", get(f"{b}.drain_secs") - during)
overall = get(f"{b}.stored_events") / get(f"{b}.drain_secs")
row("  events stored per second, first POST to drained", "ev/s", overall, ">= 20,000",
    overall >= 20000 and f"{b}.drain_gave_up" not in results, name="(b) drain")

print("(c) ingest with the pipeline off and on")
ratio_row("wrk c64, fixed body", "req/s", get("wrk_off.wrk_rps"), get("wrk_on.wrk_rps"),
          "(c) wrk ratio")
row("  pending when wrk stopped, pipeline on", "items", get("wrk_on.pending_left"))
ratio_row("simulate c64, 20 events per POST", "ev/s",
          get("simulate_off.load_events_per_sec"), get("simulate_on.load_events_per_sec"),
          "(c) simulate ratio")
row("  pending when simulate stopped, pipeline on", "items", get("simulate_on.pending_left"))

# Acknowledged means stored: every load must have stored at least what it saw acknowledged.
# wrk may leave one request per connection unanswered at its deadline, which may be stored.
print()
for name in sorted({k.split(".")[0] for k in results}):
    stored = get(f"{name}.stored_deliveries")
    if name.startswith("wrk_"):
        acked, slack = get(f"{name}.wrk_ok"), int(sys.argv[3]) + get(f"{name}.wrk_errors")
        bad = get(f"{name}.wrk_other") + get(f"{name}.wrk_errors")
    else:
        acked, slack = get(f"{name}.load_acknowledged"), 0
        bad = get(f"{name}.load_deliveries") - acked
    verdict = "ok"
    if math.isnan(stored) or stored < acked:
        verdict = "LOST: fewer stored than acknowledged"
    elif stored > acked + slack:
        verdict = "EXTRA: more stored than sent"
    elif bad:
        verdict = f"ok, but {bad:.0f} not answered 200"
    print(f"stored {name:<22}{stored:>10,.0f} deliveries for {acked:>10,.0f} acknowledged: "
          f"{verdict}")
    if not verdict.startswith("ok"):
        failures.append(f"store check {name}")

print()
print("all targets met" if not failures else "MISSED: " + ", ".join(failures))
sys.exit(1 if failures else 0)
EOF
}

main() {
    case ${1-} in
        "") ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    cd "$(dirname "${BASH_SOURCE[0]}")/.."

    require_tools wrk python3 curl jq
    build_metahook

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/metahook-pipeline.XXXXXX")
    trap cleanup_metahooks EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RESULTS"
    : >"$WORK/results"
    describe_run
    warn_if_tmpfs "$WORK"

    make_body "$WORK/body.json" 1024
    write_wrk_script "$WORK/body.json" "$(sign "$WORK/body.json")" "$WORK/post.lua"

    local conversations=(--conversation all --count "$CONVERSATIONS" --seed "$SEED")
    drain_sqlite drain_conversations "${conversations[@]}" \
        --batch "$BATCH" --concurrency "$CONCURRENCY"
    drain_sqlite drain_all_kinds all --count "$ALL_EVENTS" --seed "$SEED" \
        --batch "$BATCH" --concurrency "$CONCURRENCY"
    drain_sqlite drain_single "${conversations[@]}" --batch 1 --concurrency "$CONCURRENCY"
    drain_while_ingesting drain_ingesting "${conversations[@]}" \
        --batch "$BATCH" --concurrency "$CONCURRENCY"

    ingest_wrk wrk_off false
    ingest_wrk wrk_on true
    local load=(--conversation all --count "$LOAD_CONVERSATIONS" --seed "$SEED"
        --batch 20 --concurrency 64)
    ingest_simulate simulate_off false "${load[@]}"
    ingest_simulate simulate_on true "${load[@]}"

    local status=0
    report | tee "$RESULTS/summary.txt" || status=$?
    summarize_logs "$RESULTS" | tee -a "$RESULTS/summary.txt"
    # The disk's fsync tail changes by the hour on shared machines: say how it was around the run.
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
    echo "disk at the end: $(fsync_probe "$WORK" 5)" >>"$RESULTS/machine.txt"
    { echo; grep '^disk\|^load' "$RESULTS/machine.txt"; } | tee -a "$RESULTS/summary.txt"
    log "raw outputs, server logs and this table: $RESULTS/"
    exit "$status"
}

main "$@"
