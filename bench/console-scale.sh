#!/usr/bin/env bash
# What the console gets from a daemon at brand scale (issue 17): the
# overview, plan, queue and costs requests, timed, on the state a
# `KEEP=1 bench/replan.sh N T` run kept.
#
#   KEEP=1 bench/replan.sh 10000000 1000     # prints "kept /tmp/replan.XXXXXX"
#   bench/console-scale.sh /tmp/replan.XXXXXX
#   BIN=/tmp/other-build bench/console-scale.sh /tmp/replan.XXXXXX
#
# Starts the release `touchpointd` (or BIN's) on the kept state dir and
# config, its clock at DAY 06:30 (default 2026-12-01, the plan day of
# replan.sh), and times with the release `touchpoint`, one after the
# other: the first overview after the start (the console gives up on a
# request after 30 s and asks again; this loop does the same, up to 20
# times, and prints how long until one was answered), the overview again,
# a committed plan of DAY, the overview after it, the costs, a queue page
# of one tenant (`tenant:d777 status:planned`, d777 exists from 777
# dealers on), a queue page over every tenant (`status:held`), the same
# again (the stores closed meanwhile answer from the outbox indexes kept at
# their close) and one of `status:planned` (a full page of rows). After
# each: the daemon's RSS (VmRSS, and the peak VmHWM, from /proc) and the
# number of tenant stores open.
set -u
SCRATCH=${1:?usage: bench/console-scale.sh SCRATCH (a dir kept by KEEP=1 bench/replan.sh)}
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
DAY=${DAY:-2026-12-01}
export TOUCHPOINT_SOCKET="$SCRATCH/tp/touchpointd.sock"
NO_COLOR=1 "$BIN/touchpointd" --config "$SCRATCH/tp/touchpointd.toml" --clock-start "$DAY 06:30" \
    --log warn </dev/null >"$SCRATCH/tp/console-scale.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 1 600); do "$BIN/touchpoint" status >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB ", $1, $2 / 1024 }' "/proc/$PID/status"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
open_stores() { "$BIN/touchpoint" status --json | sed -n 's/.*"tenants_open": *\([0-9]*\).*/\1/p'; }
run() {
    local name=$1
    shift
    local start rc
    start=$(now)
    "$BIN/touchpoint" "$@" >"$SCRATCH/console-$name.out" 2>&1
    rc=$?
    echo "$name: $(since "$start") s (exit $rc, $(wc -c <"$SCRATCH/console-$name.out") bytes); $(rss); $(open_stores) stores open"
}
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(now)
for try in $(seq 1 20); do
    "$BIN/touchpoint" overview >"$SCRATCH/console-overview-first.out" 2>&1 && break
done
echo "first overview: answered after $(since "$start") s ($try tries); $(rss); $(open_stores) stores open"
run overview-again overview
run plan plan --json --day "$DAY"
run overview-after-plan overview
run costs costs
run queue-one-tenant queue "tenant:d777 status:planned"
run queue-every-tenant queue "status:held"
run queue-every-tenant-again queue "status:held"
run queue-every-tenant-planned queue "status:planned"
