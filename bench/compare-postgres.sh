#!/usr/bin/env bash
# Touchpoint side by side with PostgreSQL 15 on the same generated CSVs.
#
#   bench/compare-postgres.sh                  # 100,000 customers over 10 dealers
#   bench/compare-postgres.sh 1000000 100      # 1M customers over 100 dealers
#   DAY=2026-12-01 bench/compare-postgres.sh   # another plan day (default 2026-12-01)
#   IMPORT_JOBS=4 bench/compare-postgres.sh    # concurrent uploads (default 4)
#
# 1. Installs PostgreSQL from Debian's packages if `initdb`, `pg_ctl`,
#    `postgres` or `psql` is missing (no cluster is created or started by
#    the package: the postgresql service is forbidden to start while
#    installing, as bench/dispatch.sh does for Postfix).
# 2. Builds the release binaries (touchpointd, touchpoint, touchpoint-datagen)
#    before anything is measured.
# 3. Generates the population with `touchpoint-datagen`: N customers split
#    evenly over T dealer files (the demo network's dealers d001…, the plan
#    benchmark's mix: 2 % near-duplicates, 2 % fleets, 15 % without consent,
#    no broken rows), UTF-8 with `,` (the `comma` dialect), as of DAY.
#    Both sides read these same files.
# 4. PostgreSQL: a throwaway cluster (initdb) in the temp dir, run as
#    `nobody` when the script runs as root, listening only on a Unix socket
#    in the temp dir; server defaults except fsync = on as shipped. One table
#    with a column per export field (typed: dates, integers) and the tenant;
#    each file loaded with `COPY … FROM '<file>' (FORMAT csv, HEADER)` (timed,
#    all files, one after the other). Then the bare SQL selection (timed),
#    see SELECTION below.
# 5. Touchpoint: a real `touchpointd` (release) on a fresh state dir in the
#    temp dir, its clock started at DAY 06:00 (`--clock-start`), dispatch off
#    (`[dispatch] enabled = false`: nothing is sent, so nothing but planning
#    is measured), the shipped brand file and templates and the generated
#    dealer policies. The same files are imported over the socket with
#    `touchpoint import --tenant <id> <file>`, IMPORT_JOBS at a time (timed:
#    parsed, validated, deduplicated, durable, identity pass). Then
#    `touchpoint plan --dry-run --day DAY` (timed), `touchpoint plan --day
#    DAY` (the committed plan, timed), an import of 1 % of every dealer's
#    customers again from another seed (`touchpoint-datagen --resample 1`:
#    changed names and consents, new vehicles; timed) and a re-plan (timed).
# 6. Prints one table: both sides, the ratios, the daemon's peak RSS
#    (VmHWM from /proc) and its state dir against the CSVs.
#
# SELECTION (the SQL side): the occasions the plan of day D takes, by the
# planner's own window rule. For every export row (one per vehicle):
#   - service due: last service + 12 months, or + 30,000 km at the brand's
#     default 40 km/day if earlier (no visit history: the planner projects
#     at that default too); lead 21 days;
#   - HU due: the export's next inspection, else first registration + 36
#     months, then every 24 months; lead 28 days;
#   - warranty ending: the warranty end; lead 60 days;
#   - birthday: the next birthday from D (email only); lead 3 days;
# an occasion up to 90 days overdue counts as due on D; it is taken when it
# is due on or after D and its send day (due − lead) is at most D + HORIZON
# (14, the shipped brand's horizon_days), and the customer has a usable
# channel: email consent "yes", or post not refused ("no") and a postcode
# (the brand's opt-in email, opt-out post). Occasions are bundled per
# customer (tenant, customer number): one row per customer with its list.
# It does NOT apply: duplicate matching and merges, fleet consolidation,
# the winter campaign (a segment on vehicle age and journey stage),
# journey stages, frequency caps, budgets, quiet days and holidays, send
# times, learned leads, the occasion index (what was planned before); it
# renders nothing and writes no message. Touchpoint applies every one of
# these and, in the committed plan, writes the outbox.
#
# Needs root only to install packages; the cluster runs as nobody.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

CUSTOMERS=${1:-100000}
DEALERS=${2:-10}
DAY=${DAY:-2026-12-01}
IMPORT_JOBS=${IMPORT_JOBS:-4}
# The planning horizon of the SQL selection: the shipped brand's
# [planning] horizon_days, which Touchpoint's plan uses.
HORIZON=${HORIZON:-14}
RELEASE="$ROOT/target/release"
case "$CUSTOMERS$DEALERS$HORIZON" in
*[!0-9]*)
    echo "usage: bench/compare-postgres.sh [CUSTOMERS] [DEALERS]" >&2
    exit 2
    ;;
esac

log() { echo "compare-postgres.sh: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

PG_BIN=""
find_postgres() {
    local d
    for d in /usr/local/bin /usr/lib/postgresql/15/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            PG_BIN=$d
            return 0
        fi
    done
    return 1
}

install_postgres() {
    if find_postgres && command -v psql >/dev/null; then
        return
    fi
    log "installing postgresql-15 (for initdb, pg_ctl, postgres and psql)"
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL is missing and installing it needs root"
        exit 1
    fi
    # Forbid the package to start a service while installing (the usual
    # policy-rc.d mechanism): we run our own cluster, not the system's.
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod 755 "$guard"
    fi
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client-15 >/dev/null
    if [ -n "$guard" ]; then
        rm -f "$guard"
    fi
    find_postgres || {
        log "PostgreSQL 15 binaries not found after installing"
        exit 1
    }
}

install_postgres
for tool in /usr/bin/time awk du; do
    command -v "$tool" >/dev/null || {
        log "$tool is missing"
        exit 1
    }
done

# Build first, so that no compilation runs while anything is measured.
log "building the release binaries"
cargo build --release -p touchpoint-daemon -p touchpoint-console -p touchpoint-datagen --bins >&2

SCRATCH=$(mktemp -d /tmp/tp-compare-pg.XXXXXX)
PG_DATA="$SCRATCH/pg/data"
PG_SOCK="$SCRATCH/pg/sock"
DAEMON_PID=""
PG_STARTED=""

# As nobody when root (initdb refuses root), else as ourselves.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATAGEN="$RELEASE/touchpoint-datagen"
DAEMON="$RELEASE/touchpointd"
CONSOLE="$RELEASE/touchpoint"

# ----- the population -------------------------------------------------------

mkdir -p "$SCRATCH/csv" "$SCRATCH/touch" "$SCRATCH/policies"
log "generating $CUSTOMERS customers over $DEALERS dealer files as of $DAY"
"$DATAGEN" --customers "$CUSTOMERS" --dealers "$DEALERS" --dialect comma --as-of "$DAY" \
    --out "$SCRATCH/csv" --policies "$SCRATCH/policies" >"$SCRATCH/files.txt"
"$DATAGEN" --customers "$CUSTOMERS" --dealers "$DEALERS" --dialect comma --as-of "$DAY" \
    --resample 1 --out "$SCRATCH/touch" >"$SCRATCH/touch.txt"
ROWS=$(awk '{ n += $3 } END { print n }' "$SCRATCH/files.txt")
TOUCH_ROWS=$(awk '{ n += $3 } END { print n }' "$SCRATCH/touch.txt")
CSV_BYTES=$(du -sb "$SCRATCH/csv" | cut -f1)
log "$ROWS rows (one per vehicle), $((CSV_BYTES / 1000000)) MB of CSV; the 1 % import: $TOUCH_ROWS rows"
# The cluster (nobody) reads the files with COPY.
chmod 755 "$SCRATCH" "$SCRATCH/csv"
chmod 644 "$SCRATCH"/csv/*

# ----- PostgreSQL -----------------------------------------------------------

mkdir -p "$PG_DATA" "$PG_SOCK"
if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$SCRATCH/pg" "$PG_DATA" "$PG_SOCK"
fi
log "initdb in $PG_DATA"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U bench --auth=trust --no-instructions -E UTF8 --locale=C.UTF-8 >"$SCRATCH/initdb.log" 2>&1 || {
    cat "$SCRATCH/initdb.log" >&2
    exit 1
}
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$SCRATCH/pg/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_SOCK'" start >/dev/null
PG_STARTED=1
PG_VERSION=$("$PG_BIN/postgres" --version)

psql_run() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -U bench -d postgres "$@"
}

psql_run <<'SQL'
CREATE TABLE export_rows (
    tenant text NOT NULL,
    customer_no text NOT NULL,
    salutation text,
    first_name text,
    last_name text,
    company text,
    street text,
    house_no text,
    postcode text,
    city text,
    email text,
    phone text,
    birth_date date,
    consent_email text,
    consent_post text,
    consent_phone text,
    vin text,
    make text,
    model text,
    first_registration date,
    last_service_date date,
    last_service_km integer,
    next_inspection date,
    warranty_end date
);
SQL

log "PostgreSQL: COPY of $ROWS rows"
{
    while read -r tenant file _; do
        echo "ALTER TABLE export_rows ALTER COLUMN tenant SET DEFAULT '$tenant';"
        echo "COPY export_rows (customer_no, salutation, first_name, last_name, company, street, house_no, postcode, city, email, phone, birth_date, consent_email, consent_post, consent_phone, vin, make, model, first_registration, last_service_date, last_service_km, next_inspection, warranty_end) FROM '$file' (FORMAT csv, HEADER true, ENCODING 'UTF8');"
    done <"$SCRATCH/files.txt"
} >"$SCRATCH/copy.sql"
start=$(now)
psql_run -f "$SCRATCH/copy.sql"
PG_COPY=$(secs "$start" "$(now)")
PG_LOADED=$(psql_run -At -c "SELECT count(*) FROM export_rows")
if [ "$PG_LOADED" -ne "$ROWS" ]; then
    log "PostgreSQL loaded $PG_LOADED rows, the files have $ROWS"
    exit 1
fi
# Untimed: sets the hint bits and statistics, so the selection reads a
# settled table (in PostgreSQL's favour).
psql_run -c "VACUUM ANALYZE export_rows" >/dev/null

cat >"$SCRATCH/select.sql" <<SQL
WITH v AS (
    SELECT tenant, customer_no, birth_date, last_service_date, next_inspection,
           warranty_end, first_registration,
           coalesce(consent_email = 'yes', false) AS email_ok,
           coalesce(consent_post, '') <> 'no' AND postcode IS NOT NULL AS post_ok
    FROM export_rows
),
occ AS (
    SELECT tenant, customer_no, 'service_due' AS occasion, 21 AS lead,
           least(last_service_date + interval '12 months',
                 last_service_date + 750)::date AS due, -- 30,000 km at 40 km/day
           email_ok, post_ok
      FROM v WHERE last_service_date IS NOT NULL
    UNION ALL
    SELECT tenant, customer_no, 'hu_reminder', 28,
           coalesce(next_inspection,
                    CASE WHEN first_registration + interval '36 months' >= DATE '$DAY' - 90
                         THEN first_registration + interval '36 months'
                         ELSE first_registration + interval '36 months'
                              + ceil((DATE '$DAY' - 90 - (first_registration + interval '36 months')::date) / 730.5)::int
                                * interval '24 months' END::date),
           email_ok, post_ok
      FROM v WHERE next_inspection IS NOT NULL OR first_registration IS NOT NULL
    UNION ALL
    SELECT tenant, customer_no, 'warranty_extension', 60, warranty_end, email_ok, post_ok
      FROM v WHERE warranty_end IS NOT NULL
    UNION ALL
    SELECT tenant, customer_no, 'birthday', 3,
           CASE WHEN make_date(extract(year FROM DATE '$DAY')::int, extract(month FROM birth_date)::int, 1)
                     + (extract(day FROM birth_date)::int - 1) >= DATE '$DAY'
                THEN make_date(extract(year FROM DATE '$DAY')::int, extract(month FROM birth_date)::int, 1)
                     + (extract(day FROM birth_date)::int - 1)
                ELSE make_date(extract(year FROM DATE '$DAY')::int + 1, extract(month FROM birth_date)::int, 1)
                     + (extract(day FROM birth_date)::int - 1) END,
           email_ok, false
      FROM (SELECT DISTINCT ON (tenant, customer_no) * FROM v) one_per_customer
      WHERE birth_date IS NOT NULL
),
due AS (
    -- Overdue by up to 90 days: reminded as due today.
    SELECT DISTINCT tenant, customer_no, occasion,
           CASE WHEN due < DATE '$DAY' AND due >= DATE '$DAY' - 90 THEN DATE '$DAY' ELSE due END AS due
      FROM occ
     WHERE (email_ok OR post_ok)
       AND CASE WHEN due < DATE '$DAY' AND due >= DATE '$DAY' - 90 THEN DATE '$DAY' ELSE due END
           BETWEEN DATE '$DAY' AND DATE '$DAY' + $HORIZON + lead
       AND CASE WHEN due < DATE '$DAY' AND due >= DATE '$DAY' - 90 THEN DATE '$DAY' ELSE due END
           - lead <= DATE '$DAY' + $HORIZON
),
bundled AS (
    SELECT tenant, customer_no, array_agg(occasion ORDER BY due) AS occasions
      FROM due GROUP BY tenant, customer_no
)
SELECT count(*), coalesce(sum(cardinality(occasions)), 0) FROM bundled;
SQL

log "PostgreSQL: the selection"
start=$(now)
PG_RESULT=$(psql_run -At -F ' ' -f "$SCRATCH/select.sql")
PG_SELECT=$(secs "$start" "$(now)")
PG_CUSTOMERS=${PG_RESULT%% *}
PG_OCCASIONS=${PG_RESULT##* }
PG_DISK=$(psql_run -At -c "SELECT pg_total_relation_size('export_rows')")
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
PG_STARTED=""

# ----- Touchpoint -----------------------------------------------------------

STATE="$SCRATCH/tp/state"
SOCKET="$SCRATCH/tp/touchpointd.sock"
mkdir -p "$STATE" "$SCRATCH/policies/templates"
cp "$ROOT/policies/brand.toml" "$SCRATCH/policies/"
cp "$ROOT"/policies/templates/*.toml "$SCRATCH/policies/templates/"
cat >"$SCRATCH/tp/touchpointd.toml" <<TOML
# Written by bench/compare-postgres.sh.
state_dir = "$STATE"
socket = "$SOCKET"
socket_mode = "0600"
policy_dir = "$SCRATCH/policies"

[import]
watch_inbox = false

# Nothing is sent: the planned messages stay in the outbox.
[dispatch]
enabled = false
TOML

log "starting touchpointd (clock at $DAY 06:00)"
NO_COLOR=1 "$DAEMON" --config "$SCRATCH/tp/touchpointd.toml" --clock-start "$DAY 06:00" --log warn \
    </dev/null >"$SCRATCH/tp/touchpointd.log" 2>&1 &
DAEMON_PID=$!
export TOUCHPOINT_SOCKET="$SOCKET"
for _ in $(seq 1 200); do
    "$CONSOLE" status >/dev/null 2>&1 && break
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        log "touchpointd exited at start:"
        tail -n 20 "$SCRATCH/tp/touchpointd.log" >&2
        exit 1
    fi
    sleep 0.1
done
"$CONSOLE" status >/dev/null || {
    log "touchpointd does not answer on $SOCKET:"
    tail -n 20 "$SCRATCH/tp/touchpointd.log" >&2
    exit 1
}

# Imports every file of a list, IMPORT_JOBS at a time, each over its own
# connection; stops at the first failed import (exit 1: refused or partly
# failed) with its answer.
import_list() {
    local list=$1 out=$2
    awk '{ print $1, $2 }' "$list" | xargs -P "$IMPORT_JOBS" -n 2 sh -c \
        '"$0" import --json --tenant "$2" "$3" >"$1/import-$2.json" 2>&1 || { cat "$1/import-$2.json" >&2; exit 255; }' \
        "$CONSOLE" "$out" || {
        log "an import failed (its answer above)"
        exit 1
    }
}

json_sum() {
    # Sums every "key": <number> in the files (touchpoint's --json output).
    local key=$1
    shift
    cat "$@" | sed -n "s/.*\"$key\": *\([0-9][0-9]*\).*/\1/p" | awk '{ n += $1 } END { print n + 0 }'
}

mkdir -p "$SCRATCH/tp/out1" "$SCRATCH/tp/out2"
log "Touchpoint: import of $ROWS rows ($IMPORT_JOBS at a time)"
start=$(now)
import_list "$SCRATCH/files.txt" "$SCRATCH/tp/out1"
TP_IMPORT=$(secs "$start" "$(now)")
TP_IMPORTED=$(json_sum rows_ok "$SCRATCH"/tp/out1/import-*.json)
if [ "$TP_IMPORTED" -ne "$ROWS" ]; then
    log "Touchpoint imported $TP_IMPORTED rows, the files have $ROWS:"
    cat "$SCRATCH"/tp/out1/import-*.json >&2
    exit 1
fi
RSS_IMPORT=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status")

plan() {
    local out=$1
    shift
    "$CONSOLE" plan --json --day "$DAY" "$@" >"$out" || {
        log "touchpoint plan $* failed:"
        cat "$out" >&2
        exit 1
    }
    # Every tenant planned: a tenant that failed would make the figure
    # look better than it is.
    if ! tr -d ' \n' <"$out" | grep -q '"failed":\[\]'; then
        log "touchpoint plan $* failed for a tenant:"
        cat "$out" >&2
        exit 1
    fi
}

log "Touchpoint: dry run"
start=$(now)
plan "$SCRATCH/tp/dry.json" --dry-run
TP_DRY=$(secs "$start" "$(now)")
log "Touchpoint: plan"
start=$(now)
plan "$SCRATCH/tp/plan.json"
TP_PLAN=$(secs "$start" "$(now)")
RSS_PLAN=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status")

log "Touchpoint: import of 1 % ($TOUCH_ROWS rows)"
start=$(now)
import_list "$SCRATCH/touch.txt" "$SCRATCH/tp/out2"
TP_TOUCH=$(secs "$start" "$(now)")
TP_TOUCHED=$(json_sum rows_ok "$SCRATCH"/tp/out2/import-*.json)
if [ "$TP_TOUCHED" -ne "$TOUCH_ROWS" ]; then
    log "Touchpoint imported $TP_TOUCHED of the 1 % import's $TOUCH_ROWS rows:"
    cat "$SCRATCH"/tp/out2/import-*.json >&2
    exit 1
fi
log "Touchpoint: re-plan"
start=$(now)
plan "$SCRATCH/tp/replan.json"
TP_REPLAN=$(secs "$start" "$(now)")
PEAK_RSS=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status")
RSS_END=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status")
TP_DISK=$(du -sb "$STATE" | cut -f1)

DRY_MESSAGES=$(json_sum planned_count "$SCRATCH/tp/dry.json")
DRY_OCCASIONS=$(json_sum occasions_found "$SCRATCH/tp/dry.json")
DRY_RECIPIENTS=$(json_sum recipients "$SCRATCH/tp/dry.json")
PLAN_MESSAGES=$(json_sum planned_count "$SCRATCH/tp/plan.json")
REPLAN_MESSAGES=$(json_sum planned_count "$SCRATCH/tp/replan.json")
REPLAN_CANCELLED=$(json_sum cancelled_count "$SCRATCH/tp/replan.json")

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""

# ----- the table ------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "–" }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }

echo
echo "$CUSTOMERS customers over $DEALERS dealers, $ROWS rows ($(mb "$CSV_BYTES") MB of CSV, \`,\` UTF-8), plan day $DAY, $(nproc) cores; $PG_VERSION"
echo
echo "| | Touchpoint | PostgreSQL | Touchpoint / PostgreSQL |"
echo "|---|---:|---:|---:|"
echo "| load s (rows/s) | import $TP_IMPORT ($(rate "$ROWS" "$TP_IMPORT")), $IMPORT_JOBS at a time | COPY $PG_COPY ($(rate "$ROWS" "$PG_COPY")) | $(ratio "$TP_IMPORT" "$PG_COPY") × the time, $(ratio "$PG_COPY" "$TP_IMPORT") × the rows/s |"
echo "| dry run s | $TP_DRY ($DRY_RECIPIENTS recipients, $DRY_OCCASIONS occasions, $DRY_MESSAGES messages) | selection $PG_SELECT ($PG_CUSTOMERS customers, $PG_OCCASIONS occasions) | $(ratio "$TP_DRY" "$PG_SELECT") |"
echo "| committed plan s | $TP_PLAN ($PLAN_MESSAGES messages) | | $(ratio "$TP_PLAN" "$PG_SELECT") |"
echo "| import of 1 % s | $TP_TOUCH ($TOUCH_ROWS rows) | | |"
echo "| re-plan after it s | $TP_REPLAN ($REPLAN_MESSAGES new messages, $REPLAN_CANCELLED cancelled) | | |"
echo "| daemon RSS MB | after import $RSS_IMPORT, after plan $RSS_PLAN, at the end $RSS_END, peak $PEAK_RSS | | |"
echo "| on disk MB | state dir $(mb "$TP_DISK") ($(ratio "$TP_DISK" "$CSV_BYTES") × the CSV) | table $(mb "$PG_DISK") | |"
