#!/usr/bin/env bash
# The re-plan after a small import, measured on its own (issue 17).
#
#   bench/replan.sh                    # 100,000 customers over 10 dealers
#   bench/replan.sh 1000000 100        # 1M customers over 100 dealers
#   KEEP=1 bench/replan.sh             # keep the scratch directory
#   DAEMON=/tmp/touchpointd-old bench/replan.sh   # another daemon binary
#   SAVE=/tmp/after bench/replan.sh    # keep the plan and re-plan reports
#                                      # whole there (every message listed)
#   IDLE=60 bench/replan.sh            # then close idle tenant stores after
#                                      # 60 s and print the RSS once they are
#   IDLE=20 GAP=1 bench/replan.sh      # and let every store close between
#                                      # the plan and the 1 % import (an
#                                      # export that comes later in the day)
#   TWICE=1 bench/replan.sh            # then import 2 % (the 1 % again and
#                                      # 1 % more) and re-plan a second time
#   MAX_OPEN=8 bench/replan.sh         # at most 8 tenant stores open at once
#                                      # ([stores] max_open_tenants)
#
# The Touchpoint side of bench/compare-postgres.sh, without PostgreSQL: the
# same population (`touchpoint-datagen --dialect comma --as-of DAY`, the
# 1 % file with `--resample 1`), a real release `touchpointd` on a fresh
# state dir with dispatch off, the clock at DAY 06:00. Imports everything
# (IMPORT_JOBS at a time), plans (committed), imports the 1 % file, and
# re-plans; prints the seconds of each step, the planner's phase times per
# tenant from the daemon's log (target `touchpointd::planner::phases`),
# the re-plan's counts and the daemon's RSS after each step (VmRSS, and
# the peak VmHWM, from /proc). With IDLE=N the daemon closes tenant stores
# unused for N seconds (`[stores] idle_close_secs`), and the script waits
# for that and prints the RSS of the idle daemon. Builds the release
# binaries first unless DAEMON is given.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

CUSTOMERS=${1:-100000}
DEALERS=${2:-10}
DAY=${DAY:-2026-12-01}
IMPORT_JOBS=${IMPORT_JOBS:-4}
RELEASE="$ROOT/target/release"
case "$CUSTOMERS$DEALERS" in
*[!0-9]*)
    echo "usage: bench/replan.sh [CUSTOMERS] [DEALERS]" >&2
    exit 2
    ;;
esac

log() { echo "replan.sh: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

if [ -z "${DAEMON:-}" ]; then
    cargo build --release -p touchpoint-daemon -p touchpoint-console -p touchpoint-datagen --bins >&2
    DAEMON="$RELEASE/touchpointd"
fi
DATAGEN="$RELEASE/touchpoint-datagen"
CONSOLE="$RELEASE/touchpoint"

SCRATCH=$(mktemp -d /tmp/replan.XXXXXX)
DAEMON_PID=""
cleanup() {
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ -z "${KEEP:-}" ]; then
        rm -rf "$SCRATCH"
    else
        log "kept $SCRATCH"
    fi
}
trap cleanup EXIT

mkdir -p "$SCRATCH/csv" "$SCRATCH/touch" "$SCRATCH/policies/templates" "$SCRATCH/tp/state"
log "generating $CUSTOMERS customers over $DEALERS dealer files as of $DAY"
"$DATAGEN" --customers "$CUSTOMERS" --dealers "$DEALERS" --dialect comma --as-of "$DAY" \
    --out "$SCRATCH/csv" --policies "$SCRATCH/policies" >"$SCRATCH/files.txt"
"$DATAGEN" --customers "$CUSTOMERS" --dealers "$DEALERS" --dialect comma --as-of "$DAY" \
    --resample 1 --out "$SCRATCH/touch" >"$SCRATCH/touch.txt"
if [ -n "${TWICE:-}" ]; then
    mkdir -p "$SCRATCH/touch2"
    "$DATAGEN" --customers "$CUSTOMERS" --dealers "$DEALERS" --dialect comma --as-of "$DAY" \
        --resample 2 --out "$SCRATCH/touch2" >"$SCRATCH/touch2.txt"
fi
cp "$ROOT/policies/brand.toml" "$SCRATCH/policies/"
cp "$ROOT"/policies/templates/*.toml "$SCRATCH/policies/templates/"
SOCKET="$SCRATCH/tp/touchpointd.sock"
cat >"$SCRATCH/tp/touchpointd.toml" <<TOML
# Written by bench/replan.sh.
state_dir = "$SCRATCH/tp/state"
socket = "$SOCKET"
socket_mode = "0600"
policy_dir = "$SCRATCH/policies"

[import]
watch_inbox = false

[dispatch]
enabled = false

[stores]
${IDLE:+idle_close_secs = $IDLE}
${MAX_OPEN:+max_open_tenants = $MAX_OPEN}
TOML

NO_COLOR=1 "$DAEMON" --config "$SCRATCH/tp/touchpointd.toml" --clock-start "$DAY 06:00" \
    --log "warn,touchpointd::planner::phases=debug" </dev/null >"$SCRATCH/tp/touchpointd.log" 2>&1 &
DAEMON_PID=$!
export TOUCHPOINT_SOCKET="$SOCKET"
for _ in $(seq 1 200); do
    "$CONSOLE" status >/dev/null 2>&1 && break
    kill -0 "$DAEMON_PID" 2>/dev/null || {
        tail -n 20 "$SCRATCH/tp/touchpointd.log" >&2
        exit 1
    }
    sleep 0.1
done

import_list() {
    local list=$1 out=$2
    mkdir -p "$out"
    awk '{ print $1, $2 }' "$list" | xargs -P "$IMPORT_JOBS" -n 2 sh -c \
        '"$0" import --json --tenant "$2" "$3" >"$1/import-$2.json" 2>&1 || { cat "$1/import-$2.json" >&2; exit 255; }' \
        "$CONSOLE" "$out" || {
        log "an import failed (its answer above)"
        exit 1
    }
}
plan() {
    local out=$1
    "$CONSOLE" plan --json --day "$DAY" ${SAVE:+--show 10000000} >"$out" || {
        cat "$out" >&2
        exit 1
    }
    tr -d ' \n' <"$out" | grep -q '"failed":\[\]' || {
        log "a tenant failed to plan:"
        cat "$out" >&2
        exit 1
    }
}
json_sum() {
    local key=$1
    shift
    cat "$@" | sed -n "s/.*\"$key\": *\([0-9][0-9]*\).*/\1/p" | awk '{ n += $1 } END { print n + 0 }'
}
phases() {
    # The planner's phase lines since line $1 of the log, summed over tenants (ms).
    tail -n +"$1" "$SCRATCH/tp/touchpointd.log" | grep 'plan phases' |
        sed 's/\x1b\[[0-9;]*m//g' |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /_us=/) { split($i, kv, "="); s[kv[1]] += kv[2] }
               else if ($i ~ /^waiting_(planned|carried)=/) { split($i, kv, "="); w[kv[1]] += kv[2] } }
             END { for (k in s) printf "  %s %.0f ms\n", k, s[k] / 1000
                   printf "  waiting for budget: %d planned again, %d carried\n", w["waiting_planned"], w["waiting_carried"] }' | sort
}

unsettled() {
    # Why the run's unsettled recipients will be planned again, or not
    # (the planner's 'unsettled recipients' lines since line $1, summed).
    # (none from a daemon before they were logged: zeros)
    tail -n +"$1" "$SCRATCH/tp/touchpointd.log" | sed 's/\x1b\[[0-9;]*m//g' |
        awk '/unsettled recipients/ { for (i = 1; i <= NF; i++) if ($i ~ /^(revision|send_time|own_moved|budget_given_back|waiting_for_budget|settled)=/) { split($i, kv, "="); s[kv[1]] += kv[2] } }
             END { printf "  unsettled after the run: planned again for revision %d, send time %d, own messages moved %d, budget given back %d; waiting for budget %d; settled (capping, value) %d\n",
                   s["revision"], s["send_time"], s["own_moved"], s["budget_given_back"], s["waiting_for_budget"], s["settled"] }'
}

rss() {
    awk '/^VmRSS|^VmHWM/ { printf "%s %d MB ", $1, $2 / 1024 }' "/proc/$DAEMON_PID/status"
}

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(now)
import_list "$SCRATCH/files.txt" "$SCRATCH/out1"
echo "import of $(awk '{ n += $3 } END { print n }' "$SCRATCH/files.txt") rows: $(secs "$start" "$(now)") s; $(rss)"
mark=$(($(wc -l <"$SCRATCH/tp/touchpointd.log") + 1))
start=$(now)
plan "$SCRATCH/plan.json"
echo "committed plan: $(secs "$start" "$(now)") s, $(json_sum planned_count "$SCRATCH/plan.json") messages; $(rss)"
phases "$mark"
unsettled "$mark"
idle_wait=$((${IDLE:-0} + ${IDLE:-0} / 4 + 5))
open_stores() { "$CONSOLE" status --json | sed -n 's/.*"tenants_open": *\([0-9]*\).*/\1/p'; }
if [ -n "${GAP:-}" ] && [ -n "${IDLE:-}" ]; then
    sleep "$idle_wait"
    echo "idle for $idle_wait s before the 1 % import ($(open_stores) tenant stores open): $(rss)"
fi
replan_round() {
    # An import of the files listed in $1 (described as $2), then a
    # re-plan saved as $3 (printed as $4).
    local list=$1 what=$2 json=$3 name=$4
    start=$(now)
    import_list "$list" "$SCRATCH/out-${name// /-}"
    echo "import of $what ($(awk '{ n += $3 } END { print n }' "$list") rows): $(secs "$start" "$(now)") s"
    mark=$(($(wc -l <"$SCRATCH/tp/touchpointd.log") + 1))
    start=$(now)
    plan "$json"
    echo "$name: $(secs "$start" "$(now)") s, $(json_sum planned_count "$json") messages," \
        "$(json_sum cancelled_count "$json") cancelled, $(json_sum recipients "$json") recipients; $(rss)"
    phases "$mark"
    unsettled "$mark"
}
replan_round "$SCRATCH/touch.txt" "1 %" "$SCRATCH/replan.json" re-plan
if [ -n "${TWICE:-}" ]; then
    replan_round "$SCRATCH/touch2.txt" "2 % (half of it the 1 % again)" "$SCRATCH/replan2.json" "second re-plan"
fi
if [ -n "${IDLE:-}" ]; then
    # The closer looks every quarter of the idle time (1–60 s).
    sleep "$idle_wait"
    echo "idle for $idle_wait s ($(open_stores) tenant stores open): $(rss)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${SAVE:-}" ]; then
    mkdir -p "$SAVE"
    cp "$SCRATCH/plan.json" "$SCRATCH/replan.json" "$SAVE/"
    if [ -n "${TWICE:-}" ]; then cp "$SCRATCH/replan2.json" "$SAVE/"; fi
fi
