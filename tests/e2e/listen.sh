#!/usr/bin/env bash
# End to end: real HAProxy and rsyslog feeding `hapwatch listen`, four ways.
#
#   udp     HAProxy -> hapwatch over UDP (RFC 3164, HAProxy's default)
#   octet   HAProxy -> rsyslog -> hapwatch over TCP, octet-counted, RSYSLOG_SyslogProtocol23Format
#   lf      HAProxy -> rsyslog -> hapwatch over TCP, LF, RSYSLOG_ForwardFormat
#   unix    HAProxy -> hapwatch over a unix datagram socket
#
# One hapwatch per path (its own database OUTDIR/<path>.db), so each path's
# story is checked alone. A sink beside them keeps HAProxy's own UDP output
# (OUTDIR/raw.log) to compare the times with. Kills be_app/srv2 and brings
# it back, then stops everything with SIGTERM (hapwatch must exit 0).
# Everything on 127.0.0.1; ~15 s.
#
# Usage: tests/e2e/listen.sh OUTDIR PORT_BASE HAPWATCH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
helpers="python3 $here/../../fixtures/capture_helpers.py"
out=$1; base=$2; hw=$3
work=$(mktemp -d /tmp/hapwatch-e2e.XXXXXX)
P_HTTP=$((base+0)); P_S1=$((base+1)); P_S2=$((base+2))
P_UDP=$((base+10)); P_OCTET=$((base+11)); P_LF=$((base+12)); P_RSYS=$((base+13)); P_RAW=$((base+14))
P_METRICS=$((base+20))
pids=(); hwpids=()
cleanup() {
  for p in "${hwpids[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  [ -f "$work/rsyslog.pid" ] && kill "$(cat "$work/rsyslog.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
event() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $*" >> "$out/events.log"; }

listen() { # name args...
  local name=$1; shift
  "$hw" listen --db "$out/$name.db" "$@" 2>"$out/$name.err" &
  hwpids+=($!)
}
listen udp --udp 127.0.0.1:$P_UDP --metrics 127.0.0.1:$P_METRICS
listen octet --tcp 127.0.0.1:$P_OCTET
listen lf --tcp 127.0.0.1:$P_LF
listen unix --unix "$work/log.sock"
$helpers udp-sink $P_RAW "$out/raw.log" & pids+=($!)
$helpers http $P_S1 "$work/slow1" 2>/dev/null & pids+=($!)
$helpers http $P_S2 "$work/slow2" 2>/dev/null & s2=$!; pids+=($s2)
for _ in $(seq 50); do [ -S "$work/log.sock" ] && break; sleep 0.1; done

cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$P_RSYS" ruleset="haproxy")
ruleset(name="haproxy") {
  action(type="omfwd" target="127.0.0.1" port="$P_OCTET" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="$P_LF" protocol="tcp"
         template="RSYSLOG_ForwardFormat")
}
CONF
rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" 2>"$out/rsyslogd.err" &
pids+=($!)

cat > "$work/haproxy.cfg" <<CONF
global
    log 127.0.0.1:$P_UDP local0
    log 127.0.0.1:$P_RAW local0
    log 127.0.0.1:$P_RSYS local0
    log $work/log.sock local0
    pidfile $work/haproxy.pid

defaults
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 500ms

frontend fe_http
    mode http
    option httplog
    bind 127.0.0.1:$P_HTTP
    default_backend be_app

backend be_app
    mode http
    option httpchk GET /health
    default-server inter 300ms fall 2 rise 2
    server srv1 127.0.0.1:$P_S1 check
    server srv2 127.0.0.1:$P_S2 check
CONF
haproxy -c -f "$work/haproxy.cfg" >/dev/null
sleep 1
haproxy -db -f "$work/haproxy.cfg" 2>"$out/haproxy-stderr.log" &
hap=$!; pids+=($hap)
sleep 2
$helpers load $P_HTTP $((base+30)) 8 10 & loadpid=$!; pids+=($loadpid)
sleep 1
event "kill be_app/srv2"; kill "$s2"; sleep 3
event "restart be_app/srv2"; $helpers http $P_S2 "$work/slow2" 2>/dev/null & pids+=($!); sleep 3
wait "$loadpid" 2>/dev/null || true
curl -s "http://127.0.0.1:$P_METRICS/metrics" > "$out/metrics.txt" || true
kill "$hap"; sleep 1
kill "$(cat "$work/rsyslog.pid")" 2>/dev/null || true
sleep 1
# SIGTERM: each hapwatch drains, commits and exits 0 within 5 s.
for p in "${hwpids[@]}"; do kill -TERM "$p"; done
status=0
for p in "${hwpids[@]}"; do
  start=$(date +%s%N)
  wait "$p" || status=$?
  echo "exit of $p: $status after $(( ($(date +%s%N) - start) / 1000000 )) ms" >> "$out/events.log"
done
hwpids=()
exit $status
