#!/usr/bin/env bash
# The long soak of docs/reliability.md: the integration suite's soak test (tests/it/soak.rs),
# built in release and run for an hour. Mixed traffic from `metahook simulate` on two load
# loops, the server killed or stopped every METAHOOK_SOAK_RESTART_SECONDS, then every
# acknowledged delivery checked as stored, every event as stored once, the state against one
# clean pass, and memory from one process to the next. The figures are printed and kept as
# JSON in target/bench/.
#
#   bash bench/soak.sh                                  an hour on SQLite
#   METAHOOK_SOAK_SECONDS=600 bash bench/soak.sh        ten minutes
#   METAHOOK_TEST_DATABASE_URL=postgres://... bash bench/soak.sh   on PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."

export METAHOOK_SOAK_SECONDS=${METAHOOK_SOAK_SECONDS:-3600}
export METAHOOK_SOAK_RESTART_SECONDS=${METAHOOK_SOAK_RESTART_SECONDS:-120}
export METAHOOK_SOAK_RATE=${METAHOOK_SOAK_RATE:-100}
mkdir -p target/bench
export METAHOOK_SOAK_REPORT=${METAHOOK_SOAK_REPORT:-$PWD/target/bench/soak-$(date -u +%Y%m%dT%H%M%SZ).json}

echo "== soak: ${METAHOOK_SOAK_SECONDS}s, a restart every ${METAHOOK_SOAK_RESTART_SECONDS}s," \
    "two load loops of up to ${METAHOOK_SOAK_RATE} requests/s, commit $(git rev-parse --short HEAD)"
cargo test --release -p metahook --test it soak -- --nocapture --test-threads=1
echo "== report: $METAHOOK_SOAK_REPORT"
cat "$METAHOOK_SOAK_REPORT"
