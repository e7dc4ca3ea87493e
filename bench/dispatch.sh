#!/usr/bin/env bash
# Email dispatch throughput on loopback against a real SMTP sink.
#
#   bench/dispatch.sh                      # 10k and 100k messages, 1, 4 and 16 connections
#   bench/dispatch.sh 10000                # chosen sizes
#   CONNECTIONS="1 4" bench/dispatch.sh    # chosen connection counts
#   PORT=25250 bench/dispatch.sh           # another port for the sink
#   DKIM=rsa bench/dispatch.sh             # every email DKIM-signed: rsa (2048),
#                                          # ed25519, or a PEM key file
#
# 1. Installs Postfix's test tools from Debian's packages if `smtp-sink` is
#    missing (the postfix service is neither configured nor started, and any
#    postfix that installing started anyway is stopped again).
# 2. Starts `smtp-sink` on 127.0.0.1:PORT: one process, no logging, no dumps.
# 3. Measures the ceiling: Postfix's own client, `smtp-source`, sends as many
#    messages as the largest size over 1, 4 and 16 parallel sessions that
#    each reuse their connection (`-d`), with a body as long as our average
#    rendered email.
# 4. Runs our benchmark (`daemon/benches/dispatch.rs`) against the same sink:
#    the real Dispatcher with personalised rendering and durable state
#    transitions, and prints our rate next to smtp-source's and the ratio.
#
# Needs root only to install the package; the sink itself runs as nobody.

set -euo pipefail

cd "$(dirname "$0")/.."

PORT=${PORT:-25250}
CONNECTIONS=${CONNECTIONS:-"1 4 16"}
SIZES=("$@")
if [ ${#SIZES[@]} -eq 0 ]; then
    SIZES=(10000 100000)
fi
LARGEST=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -n 1)
# smtp-source sends at most this many messages per measurement.
SOURCE_MESSAGES=${SOURCE_MESSAGES:-$LARGEST}
# The test keys of daemon/tests/fixtures/dkim (they protect nothing).
case "${DKIM:-}" in
"") DKIM_ARGS=() ;;
rsa) DKIM_ARGS=(--dkim "$PWD/daemon/tests/fixtures/dkim/test-rsa.pem") ;;
ed25519) DKIM_ARGS=(--dkim "$PWD/daemon/tests/fixtures/dkim/test-ed25519.pem") ;;
*) DKIM_ARGS=(--dkim "$(realpath "$DKIM")") ;;
esac
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source

log() { echo "dispatch.sh: $*" >&2; }

install_postfix() {
    if [ -x "$SINK" ] && [ -x "$SOURCE" ]; then
        return
    fi
    log "installing postfix (for smtp-sink and smtp-source)"
    if [ "$(id -u)" -ne 0 ]; then
        log "smtp-sink is missing and installing it needs root"
        exit 1
    fi
    # "No configuration": the package installs its programs and leaves
    # the mail system unconfigured, so nothing is started on port 25.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # And in case a service would be started anyway: forbid it while
    # installing (the usual policy-rc.d mechanism).
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod 755 "$guard"
    fi
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    if [ -n "$guard" ]; then
        rm -f "$guard"
    fi
    # If a postfix runs after all, stop it: it is not what we measure.
    if postfix status >/dev/null 2>&1; then
        log "a postfix was started by the install; stopping it"
        postfix stop >/dev/null 2>&1 || true
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

install_postfix

if port_in_use "$PORT"; then
    log "127.0.0.1:$PORT is already in use; set PORT to a free port"
    exit 1
fi

# Build first, so that no compilation runs while the sink is up.
log "building the benchmark (release)"
cargo bench -p touchpoint-daemon --bench dispatch --no-run >&2

SCRATCH=$(mktemp -d /tmp/tp-dispatch-bench.XXXXXX)
SINK_PID=""
cleanup() {
    if [ -n "$SINK_PID" ]; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

# -c: a running count of delivered messages on stdout (to a file here);
# -u nobody: drop root; backlog 1000. Nothing is logged (-s, -v), dumped
# (-d, -D) or delayed (-w), and PIPELINING, ESMTP and 8BITMIME stay on.
# -m 256: up to 256 sessions at once (the default, well above 16).
chmod 777 "$SCRATCH"
"$SINK" -c -u nobody -m 256 "127.0.0.1:$PORT" 1000 >"$SCRATCH/sink.out" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 50); do
    port_in_use "$PORT" && break
    sleep 0.1
done
if ! port_in_use "$PORT"; then
    log "smtp-sink did not start:"
    cat "$SCRATCH/sink.out" >&2
    exit 1
fi
log "smtp-sink (pid $SINK_PID) listens on 127.0.0.1:$PORT"

# The size of the messages we send: the benchmark renders a sample through
# the real dispatch path and prints the mean size in bytes.
BYTES=$(cargo bench -q -p touchpoint-daemon --bench dispatch -- "${DKIM_ARGS[@]}" --probe-size 2>/dev/null | sed -n 's/^message_bytes=//p')
BYTES=${BYTES:-8000}
# smtp-source adds about 200 bytes of headers to its -l body.
BODY=$((BYTES > 400 ? BYTES - 200 : 200))
log "our messages are $BYTES bytes on average; smtp-source sends ${BODY}-byte bodies"

now() { date +%s.%N; }

CEILING=()
for k in $CONNECTIONS; do
    start=$(now)
    # -d: one connection per session, reused for every message (as our
    # relay pool does); -N: a distinct recipient per message.
    "$SOURCE" -c -d -s "$k" -l "$BODY" -m "$SOURCE_MESSAGES" \
        -f bench@touchpoint.test -t kunde@example.test -N \
        -M bench.test "127.0.0.1:$PORT" >"$SCRATCH/source-$k.out" 2>&1
    end=$(now)
    rate=$(awk -v n="$SOURCE_MESSAGES" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    log "smtp-source: $SOURCE_MESSAGES messages over $k sessions in $secs s: $rate messages/s"
    CEILING+=("$k=$rate")
done

CEILING_ARG=$(IFS=,; echo "${CEILING[*]}")
CONN_ARG=$(echo "$CONNECTIONS" | tr ' ' ',')

echo
echo "smtp-source against smtp-sink on 127.0.0.1:$PORT, $SOURCE_MESSAGES messages of ${BODY}-byte bodies:"
echo
echo "| sessions | messages/s |"
echo "|---:|---:|"
for c in "${CEILING[@]}"; do
    echo "| ${c%%=*} | ${c#*=} |"
done
echo

cargo bench -q -p touchpoint-daemon --bench dispatch -- "${DKIM_ARGS[@]}" \
    --relay "127.0.0.1:$PORT" --connections "$CONN_ARG" --ceiling "$CEILING_ARG" "${SIZES[@]}"
