# bench/lib.sh: helpers shared by bench/run.sh, bench/pipeline.sh, bench/postgres.sh and
# bench/flood.sh. Sourced, never run. It defines functions and a few variables, and changes no
# shell options: each script sets its own (set -Eeuo pipefail) before sourcing it.
#
# What lives here: the request (a signed 1 KiB Messenger body, the wrk script that posts it, one
# POST of it with curl and the probe that checks a server verifies it), parsing wrk's and oha's
# outputs, starting and stopping `metahook serve` with its log kept in the results directory,
# reading its status, timing how long its pipeline takes to empty the backlog, and describing
# the machine. Figures go into "$WORK/results" as "key=value" lines (record), which each
# script's report turns into its table.
#
# Variables the scripts set before calling these: WORK (a temporary directory), RESULTS (where
# raw outputs and logs are kept), SECRET, SIGNATURE (for probe), VERIFY_TOKEN, METAHOOK_BIN, and
# for the drains DRAIN_SECS (longest wait) and STALL_SECS (give up sooner when the backlog stops
# shrinking).

# shellcheck shell=bash
# shellcheck disable=SC2034  # OHA_FLAGS, OHA_WAITS and SERVER_PID are read by the scripts

OHA_FLAGS=()
OHA_WAITS=0
declare -A SERVER_PID=()

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

# --- tools ----------------------------------------------------------------------------------

install_command() {
    case $1 in
        oha) echo "cargo install oha --locked      # about 6 minutes on 2 cores" ;;
        psql) echo "apt-get update && apt-get install -y postgresql" ;;
        *) echo "apt-get update && apt-get install -y $1" ;;
    esac
}

# Exits 2, saying how to install them, when any of the commands named is missing.
require_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    log "missing: ${missing[*]}. Install by hand:"
    for tool in "${missing[@]}"; do
        log "  $(install_command "$tool")"
    done
    exit 2
}

# oha's flags have changed between versions; ask the installed one what it has.
detect_oha_flags() {
    local help
    help=$(oha --help)
    OHA_FLAGS=()
    if grep -q -- '--output-format' <<<"$help"; then
        OHA_FLAGS+=(--output-format json)
    elif grep -q -- '--json' <<<"$help"; then
        OHA_FLAGS+=(--json)
    else
        die "this oha ($(oha --version)) has no JSON output; cargo install oha --locked --force"
    fi
    grep -q -- '--latency-correction' <<<"$help" || die "this oha has no --latency-correction"
    # Without it oha abandons the requests in flight at the deadline; with it, they are
    # counted, which keeps the count of 200s exact for the store check.
    if grep -q -- '--wait-ongoing-requests-after-deadline' <<<"$help"; then
        OHA_FLAGS+=(--wait-ongoing-requests-after-deadline)
        OHA_WAITS=1
    fi
}

# --- the request ----------------------------------------------------------------------------

# Writes a compact Messenger text delivery of exactly $2 bytes to $1: one entry, one messaging
# item, the message text cut to fit. ASCII only, so no escaping changes the length.
make_body() {
    python3 - "$1" "$2" <<'EOF'
import json, sys

path, size = sys.argv[1], int(sys.argv[2])
words = (
    "Hello, I ordered the oak bookshelf on Monday and the tracking page still says the parcel "
    "is waiting at the depot. Could you tell me whether it will arrive before Saturday? I will "
    "be away from Sunday until the end of the month, so if it cannot come this week please hold "
    "it and send it on the second instead. Also, the confirmation email lists the colour as "
    "natural but I picked the dark walnut finish on the product page; can you check which one "
    "is actually packed? If it is the wrong one I would rather wait for the right one than send "
    "it back later. My order number is in the email and the delivery address has not changed. "
    "If it helps, the best time to reach me is after six in the evening, and the courier can "
    "leave it with the neighbour at number twelve. Thanks a lot, and sorry for the long message. "
)

def delivery(text):
    page, user, sent = "106518714736921", "7390182254661804", 1764770400123
    item = {
        "sender": {"id": user},
        "recipient": {"id": page},
        "timestamp": sent,
        "message": {"mid": "m_Hx2bQ8k3UuPzV0cRtL9wYgAa1fE7nJ4sD6mK5oB0qZyXcVe", "text": text},
    }
    entry = {"id": page, "time": sent + 212, "messaging": [item]}
    doc = {"object": "page", "entry": [entry]}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()

room = size - len(delivery(""))
if room < 1:
    sys.exit(f"a body of {size} bytes is smaller than an empty delivery")
text = (words * (room // len(words) + 1))[:room]
body = delivery(text)
assert len(body) == size, len(body)
open(path, "wb").write(body)
EOF
}

# Prints the hex HMAC-SHA256 of file $1 under $SECRET, as Meta computes it.
sign() {
    python3 -c '
import hashlib, hmac, sys
print(hmac.new(sys.argv[2].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
' "$1" "$SECRET"
}

# Writes to $3 a wrk script that POSTs body file $1 with signature $2, and at the end prints
# one line of counts that parse_wrk reads (wrk's own summary is for people).
write_wrk_script() {
    local body=$1 signature=$2 script=$3
    cat >"$script" <<EOF
-- Written by bench/lib.sh.
local file = assert(io.open("$body", "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Hub-Signature-256"] = "sha256=$signature"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("wrk-counts requests=%d duration_us=%d status_errors=%d"
            .. " connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout))
end
EOF
}

# One POST of the body to the server on port $1 with signature $2; prints the status code.
post() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$2" \
        --data-binary "@$WORK/body.json" "http://127.0.0.1:$1/meta/webhook" || true
}

# Before measuring: the signed body ($WORK/body.json, signature $SIGNATURE) must be accepted by
# the metahook on port $1 and a wrongly signed one refused, or the figures would be of a server
# that skips the work. Counts as one delivery for the store check.
probe() {
    local code
    # shellcheck disable=SC2153  # SIGNATURE is set by the sourcing script
    code=$(post "$1" "$SIGNATURE")
    [[ $code == 200 ]] || die "metahook on port $1 answered $code to the signed body"
    code=$(post "$1" "$(tr 0-9a-f 1-9a-f0 <<<"$SIGNATURE")")
    [[ $code == 401 ]] || die "metahook on port $1 answered $code, not 401, to a wrong signature"
}

# --- reading the load generators ------------------------------------------------------------

# Results go into $WORK/results as "key=value" lines, read by each script's report.
record() { echo "$1.$2=$3" >>"$WORK/results"; }

# Prints the value recorded under key $1.$2 (the last one), or nothing.
recorded() { awk -F= -v k="$1.$2" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' \
    "$WORK/results"; }

# Prints "name value" lines from wrk output $1: rps, ok (answers under 400: metahook's are all
# 200), other (answers of 400 and above), errors (socket errors and timeouts).
parse_wrk() {
    awk '
        /^wrk-counts / {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); c[kv[1]] = kv[2] }
            print "rps", c["requests"] / (c["duration_us"] / 1e6)
            print "ok", c["requests"] - c["status_errors"]
            print "other", c["status_errors"]
            print "errors", c["connect"] + c["read"] + c["write"] + c["timeout"]
            found = 1
        }
        END { if (!found) exit 1 }' "$1"
}

# Prints "name value" lines from oha's JSON $1: rps, p50/p99/p999 in ms, ok (200s), other
# (other codes), errors.
parse_oha() {
    python3 - "$1" <<'EOF'
import json, sys

doc = json.load(open(sys.argv[1]))
codes = doc.get("statusCodeDistribution") or {}
percentiles = doc["latencyPercentiles"]
print("rps", doc["summary"]["requestsPerSec"])
for name, key in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
    seconds = percentiles.get(key)
    print(name, "nan" if seconds is None else seconds * 1000)
print("ok", codes.get("200", 0))
print("other", sum(n for code, n in codes.items() if code != "200"))
print("errors", sum((doc.get("errorDistribution") or {}).values()))
EOF
}

# --- metahook processes ---------------------------------------------------------------------

# A process that exited but is not yet reaped still answers kill -0, so read its state instead.
running() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z ]]
}

# Builds the release metahook, unless BUILD is 0, and checks that METAHOOK_BIN is there.
build_metahook() {
    if [[ $BUILD -eq 0 ]]; then
        log "BENCH_BUILD=0: using $METAHOOK_BIN as it is"
    else
        cargo build --release -p metahook
    fi
    [[ -x $METAHOOK_BIN ]] || die "no $METAHOOK_BIN"
}

# For the EXIT trap of the scripts that run only metahook: stops every server still running and
# removes WORK, unless KEEP is 1.
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup_metahooks() {
    stop_all_metahooks
    if [[ -n $WORK && $KEEP -eq 1 ]]; then
        log "kept $WORK"
    elif [[ -n $WORK ]]; then
        rm -rf "$WORK"
    fi
}

# Fails when something already answers on 127.0.0.1:$1.
port_free() {
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then
        die "something already answers on 127.0.0.1:$1; choose other ports (see --help)"
    fi
}

# start_metahook NAME PORT DATABASE_URL [VAR=VALUE...]: runs `metahook serve` on 127.0.0.1:PORT
# with the bench secret, a spool of its own in $WORK (used on PostgreSQL only) and the extra
# environment given, from $WORK so that nothing it writes lands in the repository, its log in
# $RESULTS/NAME.log (appended to, so that a restart keeps the earlier lines). Waits for
# /healthz; SERVER_PID[NAME] is its pid.
start_metahook() {
    local name=$1 port=$2 url=$3 bin
    shift 3
    port_free "$port"
    bin=$(realpath "$METAHOOK_BIN")
    echo "--- $(date -u +%H:%M:%S.%N) start: DATABASE_URL=$url $*" >>"$RESULTS/$name.log"
    (cd "$WORK" && exec env -u METAHOOK_CONFIG \
        METAHOOK_DATABASE_URL="$url" \
        METAHOOK_APP_SECRET="$SECRET" \
        METAHOOK_VERIFY_TOKEN="$VERIFY_TOKEN" \
        METAHOOK_LISTEN="127.0.0.1:$port" \
        METAHOOK_SPOOL_PATH="$WORK/$name.spool" \
        "$@" "$bin" serve) >>"$RESULTS/$name.log" 2>&1 &
    SERVER_PID[$name]=$!
    wait_healthy "$name" "$port"
}

wait_healthy() {
    local name=$1 port=$2 tries=0
    while ((tries++ < 300)); do
        if ! running "${SERVER_PID[$name]}"; then
            tail -20 "$RESULTS/$name.log" >&2
            die "metahook $name exited at start (its log is above)"
        fi
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then
            return
        fi
        sleep 0.1
    done
    tail -20 "$RESULTS/$name.log" >&2
    die "metahook $name was not healthy within 30 s"
}

# Stops metahook NAME with SIGTERM, as an operator would, and waits for it to exit (it lets
# in-flight requests finish for up to 30 s); SIGKILL after 60 s. Fails when it exited with an
# error, since figures from a server that crashed mean nothing.
stop_metahook() {
    local name=$1 pid status=0
    pid=${SERVER_PID[$name]:-}
    [[ -n $pid ]] || return 0
    unset "SERVER_PID[$name]"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
        log "warning: metahook $name did not stop within 60 s of SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    echo "--- $(date -u +%H:%M:%S.%N) stopped: exit status $status" >>"$RESULTS/$name.log"
    [[ $status -eq 0 ]] || die "metahook $name exited with status $status (see $RESULTS/$name.log)"
}

# Stops every server still running: for the EXIT trap, so it never fails.
stop_all_metahooks() {
    local name
    for name in "${!SERVER_PID[@]}"; do
        kill -TERM "${SERVER_PID[$name]}" 2>/dev/null || true
    done
    for name in "${!SERVER_PID[@]}"; do
        for _ in $(seq 300); do running "${SERVER_PID[$name]}" || break; sleep 0.1; done
        kill -KILL "${SERVER_PID[$name]}" 2>/dev/null || true
    done
    SERVER_PID=()
}

check_running() {
    if ! running "${SERVER_PID[$1]}"; then
        tail -20 "$RESULTS/$1.log" >&2
        die "metahook $1 exited during $2 (its log is above)"
    fi
}

# Prints the status JSON of the metahook on port $1 on one line; nothing when unavailable.
status_json() {
    curl -s --max-time 30 "http://127.0.0.1:$1/meta/webhook/status" | jq -c . 2>/dev/null || true
}

# Prints field $2 (a jq path such as .store.pending) of the status of the metahook on port $1.
status_value() { status_json "$1" | jq -r "$2 // empty" 2>/dev/null || true; }

now() { date +%s.%N; }

# Prints $2 - $1 (times from now) in seconds, with millisecond precision.
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Polls the status of the metahook on port $1 until store.pending is 0, appending a line per
# poll to file $2: "seconds-since-$3 deliveries events processed pending". Returns 0 once
# drained, 1 when it gave up: after $4 seconds, or after $5 seconds without the backlog
# shrinking (a pipeline that is not running at all). A drain is seen up to one poll (0.25 s,
# plus the time the status takes) after it ended.
watch_drain() {
    local port=$1 samples=$2 since=$3 limit=$4 stall=$5
    local start=$SECONDS progress=$SECONDS lowest="" line pending
    while ((SECONDS - start < limit && SECONDS - progress < stall)); do
        line=$(status_json "$port" |
            jq -r '[.store.deliveries, .store.events, .counters.processed, .store.pending]
                   | map(tostring) | join(" ")' 2>/dev/null || true)
        if [[ -n $line ]]; then
            echo "$(seconds_between "$since" "$(now)") $line" >>"$samples"
            pending=${line##* }
            [[ $pending == 0 ]] && return 0
            if [[ -z $lowest ]] || ((pending < lowest)); then
                lowest=$pending progress=$SECONDS
            fi
        fi
        sleep 0.25
    done
    return 1
}

# --- bare and PostgreSQL, for the scripts that compare against them -----------------------
# They use BARE_BIN, BARE_PORT, BARE_PID, PG_URL, WORK, RESULTS, KEEP and SIGNATURE.

# For the EXIT trap of those scripts: stops every server still running (metahook, bare,
# PostgreSQL) and removes WORK, unless KEEP is 1.
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup_servers() {
    stop_all_metahooks
    if [[ -n $BARE_PID ]]; then kill "$BARE_PID" 2>/dev/null || true; fi
    if [[ -n $PG_URL ]]; then
        bash .ci/postgres.sh stop "$WORK/pg" || log "warning: could not stop PostgreSQL in $WORK/pg"
    fi
    if [[ -n $WORK && $KEEP -eq 1 ]]; then
        log "kept $WORK"
    elif [[ -n $WORK ]]; then
        rm -rf "$WORK"
    fi
}

# Starts a throwaway PostgreSQL cluster in $WORK/pg; PG_URL is its URL.
start_postgres() {
    # The server runs as the postgres user when this runs as root: it must reach its directory.
    chmod 755 "$WORK"
    PG_URL=$(bash .ci/postgres.sh start "$WORK/pg") || die "could not start PostgreSQL"
    log "PostgreSQL ready: $PG_URL"
    cp "$WORK/pg/postgresql.conf" "$RESULTS/postgresql.conf" 2>/dev/null || true
}

# Creates database bench_$1 in the cluster and prints its URL.
fresh_database() {
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" -c "create database bench_$1" >/dev/null ||
        die "could not create database bench_$1"
    echo "${PG_URL%/*}/bench_$1"
}

# Starts the bare server on BARE_PORT and waits until it answers the signed body with 200.
start_bare() {
    port_free "$BARE_PORT"
    "$BARE_BIN" "127.0.0.1:$BARE_PORT" >>"$RESULTS/bare.log" 2>&1 &
    BARE_PID=$!
    for _ in $(seq 100); do
        [[ $(post "$BARE_PORT" "$SIGNATURE") == 200 ]] && return
        running "$BARE_PID" || break
        sleep 0.1
    done
    die "the bare server did not answer 200 within 10 s (see $RESULTS/bare.log)"
}

stop_bare() {
    kill "$BARE_PID" 2>/dev/null || true
    wait "$BARE_PID" 2>/dev/null || true
    BARE_PID=""
}

# --- simulate -------------------------------------------------------------------------------

# simulate NAME PORT ARGS...: posts realistic signed traffic with `metahook simulate --json` to
# the metahook on PORT; the summary goes to $RESULTS/NAME.json. Fails unless every delivery was
# acknowledged.
simulate() {
    local name=$1 port=$2
    shift 2
    log "$name: metahook simulate $*"
    if ! METAHOOK_APP_SECRET="$SECRET" "$METAHOOK_BIN" simulate --json \
        --url "http://127.0.0.1:$port/meta/webhook" "$@" >"$RESULTS/$name.json"; then
        head -c 2000 "$RESULTS/$name.json" >&2
        die "$name: not every delivery was acknowledged (summary above)"
    fi
}

# Prints field $2 (a jq path) of the summary of simulate run $1.
simulated() { jq -r "$2" "$RESULTS/$1.json"; }

# --- drains -------------------------------------------------------------------------------

# drain_alone NAME PORT DATABASE_URL SIMULATE-ARGS...: stores a backlog with an ingest-only
# server (METAHOOK_PIPELINE=false), stops it, then times the pipeline working it off alone,
# from the moment the server is started again with the pipeline on until nothing is pending.
drain_alone() {
    local name=$1 port=$2 url=$3 started
    shift 3
    start_metahook "$name" "$port" "$url" METAHOOK_PIPELINE=false
    simulate "$name-load" "$port" "$@"
    record_load "$name" "$name-load"
    stop_metahook "$name"

    log "$name: pipeline on, timing the drain"
    started=$(now)
    start_metahook "$name" "$port" "$url"
    time_drain "$name" "$port" "$started"
    stop_metahook "$name"
}

# Records what simulate run $2 sent and how fast, under name $1.
record_load() {
    local name=$1 run=$2 events secs
    events=$(simulated "$run" .events)
    secs=$(awk -v ms="$(simulated "$run" .elapsed_ms)" 'BEGIN { print ms / 1000 }')
    record "$name" load_events "$events"
    record "$name" load_deliveries "$(simulated "$run" .sent)"
    record "$name" load_acknowledged "$(simulated "$run" .acknowledged)"
    record "$name" load_secs "$secs"
    record "$name" load_events_per_sec "$(awk -v n="$events" -v s="$secs" 'BEGIN { print n / s }')"
    record "$name" load_requests_per_sec "$(simulated "$run" .requests_per_second)"
    record "$name" load_p99_ms "$(simulated "$run" .latency_ms.p99)"
}

# time_drain NAME PORT STARTED: waits until the metahook on PORT has nothing pending, timed from
# STARTED, and records under NAME: drain_secs, the store's figures at the end, the rates over
# the first and the second half of the backlog, and the CPU time server NAME has used since it
# started (cpu_secs). The samples are kept in the results.
time_drain() {
    local name=$1 port=$2 started=$3 samples="$RESULTS/$1-drain.txt"
    if ! watch_drain "$port" "$samples" "$started" "$DRAIN_SECS" "$STALL_SECS"; then
        log "warning: $name: backlog not drained; gave up (samples in $samples)"
        record "$name" drain_gave_up 1
    fi
    [[ -s $samples ]] || die "$name: metahook's status gave no store figures"
    summarize_drain "$name" "$samples"
    record "$name" cpu_secs "$(cpu_secs "${SERVER_PID[$name]}")"
}

# Prints the CPU time (user and system, in seconds) that process $1 has used so far.
cpu_secs() {
    awk -v tck="$(getconf CLK_TCK)" '{ print ($14 + $15) / tck }' "/proc/$1/stat"
}

# Records under $1, from samples "secs deliveries events processed pending" in file $2, the
# drain's figures.
summarize_drain() {
    local name=$1 samples=$2
    awk -v name="$name" '
        { t[NR] = $1; deliveries[NR] = $2; events[NR] = $3; processed[NR] = $4; pending[NR] = $5 }
        END {
            n = NR
            printf "%s.drain_secs=%s\n", name, t[n]
            printf "%s.drain_pending_left=%s\n", name, pending[n]
            printf "%s.stored_events=%s\n", name, events[n]
            printf "%s.stored_deliveries=%s\n", name, deliveries[n]
            printf "%s.processed=%s\n", name, processed[n]
            # The half way mark: the first sample with at most half the first backlog left.
            for (i = 1; i <= n && pending[i] > pending[1] / 2; i++) {}
            if (i > 1 && i < n) {
                printf "%s.first_half_events_per_sec=%f\n", name, events[i] / t[i]
                printf "%s.second_half_events_per_sec=%f\n", name,
                    (events[n] - events[i]) / (t[n] - t[i])
            }
        }' "$samples" >>"$WORK/results"
}

# Prints, for each server log in directory $1 (metahook's, and PostgreSQL's if there), how many
# lines it has at WARN and ERROR, and each distinct message with its count: every one is worth
# reading.
summarize_logs() {
    python3 - "$1" <<'EOF'
import collections, glob, os, re, sys

print()
print("server logs (WARN and ERROR lines, by message):")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.log"))):
    counts = collections.Counter()
    for line in open(path, errors="replace"):
        # metahook's lines (tracing), then PostgreSQL's.
        m = re.search(r"\s(WARN|ERROR) (\S+): (.*?)(?: \w+=|$)", line)
        if m:
            counts[(m.group(1), m.group(2), m.group(3))] += 1
        m = re.search(r"\s(WARNING|ERROR|FATAL|PANIC):  (.*)", line)
        if m:
            level = "WARN" if m.group(1) == "WARNING" else "ERROR"
            counts[(level, "postgresql", m.group(2))] += 1
    levels = {level: sum(n for (l, _, _), n in counts.items() if l == level)
              for level in ("WARN", "ERROR")}
    print(f"  {os.path.basename(path):<28}{levels['WARN']:>6} WARN {levels['ERROR']:>6} ERROR")
    for (level, target, message), n in counts.most_common(5):
        print(f"      {n:>6} x {level} {target}: {message[:80]}")
EOF
}

# --- the machine ----------------------------------------------------------------------------

# Prints the machine and the build: enough to tell whether two runs are comparable. $1 is the
# directory the databases live in. BENCH_COMMIT names the commit the binaries were built from
# when they did not come from this working tree (BENCH_BUILD=0 with METAHOOK_BIN).
describe_machine() {
    local dir=$1 commit dirty=""
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
    if [[ -n ${BENCH_COMMIT:-} ]]; then
        commit=$BENCH_COMMIT dirty=" (BENCH_COMMIT: the binaries were built from it elsewhere)"
    elif ! git diff --quiet HEAD -- . ':!bench' ':!docs' 2>/dev/null; then
        dirty=" (the working tree has uncommitted changes outside bench/ and docs/)"
    fi
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $commit$dirty"
    if [[ -e $METAHOOK_BIN ]]; then
        echo "metahook binary: $METAHOOK_BIN, built $(date -u -r "$METAHOOK_BIN" +%FT%TZ)"
    fi
    echo "cpu: $(nproc) x $(awk -F': ' '
        /^model name/ { name = $2 } /^cpu family/ { family = $2 } /^model\t/ { model = $2 }
        /^flags/ { virt = ($2 ~ / hypervisor /) ? ", virtual machine" : "" }
        END { printf "%s (family %s, model %s%s)", name, family, model, virt }' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "databases: $dir, on $(findmnt -no FSTYPE,SOURCE -T "$dir" | tr -s ' ')"
    echo "disk: $(fsync_probe "$dir" 5)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Prints how fast the disk under directory $1 makes 8 KiB writes durable (write, then fsync),
# one after another for $2 seconds: what bounds every commit of every durable store here. On
# shared virtual disks the tail varies from hour to hour; a long max means stalls that no
# server on this disk can hide from its p99.
fsync_probe() {
    python3 - "$1/fsync-probe" "$2" <<'EOF'
import os, sys, time

path, secs = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, latencies, start = b"x" * 8192, [], time.monotonic()
while time.monotonic() - start < secs:
    began = time.monotonic()
    os.write(fd, block)
    os.fsync(fd)
    latencies.append(time.monotonic() - began)
os.close(fd)
os.unlink(path)
latencies.sort()
ms = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
slow = sum(1 for l in latencies if l > 0.05)
print(f"8 KiB write+fsync x {len(latencies)} in {secs:.0f} s ({len(latencies) / secs:,.0f}/s):"
      f" p50 {ms(0.5):.2f} ms, p99 {ms(0.99):.2f} ms, p99.9 {ms(0.999):.1f} ms,"
      f" max {latencies[-1] * 1000:.0f} ms, {slow} over 50 ms")
EOF
}

warn_if_tmpfs() {
    if [[ $(stat -f -c %T "$1") == tmpfs ]]; then
        log "warning: $1 is on tmpfs, where fsync costs nothing; set TMPDIR to a disk"
    fi
}
