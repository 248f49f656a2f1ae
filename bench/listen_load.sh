#!/usr/bin/env bash
# Load benchmark of `hapwatch listen`, and of rsyslog on the same load.
#
#   bench/listen_load.sh [COUNT]        (default 2,000,000 messages per run)
#
# For each case: starts a fresh receiver on 127.0.0.1, sends COUNT generated
# HAProxy lines with hapwatch-load at a set rate, waits for the receiver to
# finish, and prints what it received and processed, its loss, its CPU time
# and peak RSS. Loopback only; every run is bounded by COUNT and by time.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000000}
bin=./target/release
work=$(mktemp -d /tmp/hapwatch-load.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
[ -f bench-data/load.log ] || { mkdir -p bench-data; $bin/hapwatch-gen --lines 200000 --seed 7 > bench-data/load.log; }
port=27950; mport=27951

cpu_ms() { # utime+stime of a pid, in ms
  awk -v hz="$(getconf CLK_TCK)" '{print int(($14+$15)*1000/hz)}' "/proc/$1/stat"
}
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v k="$1" 'index($0,k)==1 {s+=$NF} END {print s+0}'; }

hapwatch_case() { # proto framing rate senders
  local proto=$1 framing=$2 rate=$3 senders=${4:-1}
  rm -f "$work"/h.db*
  $bin/hapwatch listen --db "$work/h.db" --$proto 127.0.0.1:$port --metrics 127.0.0.1:$mport 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$mport/metrics" >/dev/null && break; sleep 0.05; done
  local c0; c0=$(cpu_ms $pid)
  local t0; t0=$(date +%s%N)
  local res; res=$($bin/hapwatch-load --lines bench-data/load.log --proto "$proto" --framing "$framing" \
      --to 127.0.0.1:$port --rate "$rate" --count "$count" --senders "$senders" --max-seconds 120)
  # Wait until the engine has processed everything it received (bounded):
  # the time to process is until the count stops moving.
  # Done when all arrived, or nothing moved for 2 s (the time of the last
  # move is the end).
  local prev=-1 lines=0 still=0 t1
  t1=$(date +%s%N)
  for _ in $(seq 3000); do
    lines=$(metric hapwatch_lines_total)
    if [ "$lines" -ge "$count" ]; then t1=$(date +%s%N); break; fi
    if [ "$lines" = "$prev" ]; then still=$((still+1)); [ $still -ge 40 ] && break
    else still=0; t1=$(date +%s%N); fi
    prev=$lines; sleep 0.05
  done
  local recv app kern
  recv=$(metric hapwatch_messages_received_total)
  app=$(metric hapwatch_udp_app_drops_total)
  kern=$(metric hapwatch_udp_kernel_drops_total)
  local c1; c1=$(cpu_ms $pid)
  local rss; rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  local sent secs; sent=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
  secs=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  python3 - "$proto" "$framing" "$rate" "$sent" "$secs" "$recv" "$lines" "$app" "$kern" "$((c1-c0))" "$rss" "$(( (t1 - t0) / 1000000 ))" <<'PY'
import sys
proto, framing, rate, sent, secs, recv, lines, app, kern, cpu, rss, wall = sys.argv[1:]
sent, recv, lines, app, kern, cpu, secs, wall = int(sent), int(recv), int(lines), int(app), int(kern), int(cpu), float(secs), int(wall) / 1000
loss = 100.0 * (sent - lines) / sent
print(f"hapwatch {proto:3} {framing:5} rate {rate:>7}/s: sent {sent} at {sent/secs:,.0f}/s; received {recv}, processed {lines} in {wall:.2f}s "
      f"({lines/wall:,.0f}/s), loss {loss:.3f}% (app drops {app}, kernel drops {kern}), CPU {cpu/wall/10:.0f}% of a core, peak RSS {int(rss)//1024} MB")
PY
}

rsyslog_case() { # proto rate senders
  local proto=$1 rate=$2 senders=${3:-1} out="$work/rsyslog.out"
  rm -f "$out"
  cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="$port" ruleset="r")
input(type="imtcp" address="127.0.0.1" port="$port" ruleset="r")
ruleset(name="r") { action(type="omfile" file="$out") }
CONF
  rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" 2>/dev/null &
  local pid=$!
  sleep 1
  local c0; c0=$(cpu_ms $pid)
  local t0; t0=$(date +%s%N)
  local res; res=$($bin/hapwatch-load --lines bench-data/load.log --proto "$proto" --framing octet \
      --to 127.0.0.1:$port --rate "$rate" --count "$count" --senders "$senders" --max-seconds 120)
  local prev=-1 n=0 still=0 t1
  t1=$(date +%s%N)
  for _ in $(seq 3000); do
    n=$(wc -l < "$out" 2>/dev/null || echo 0)
    if [ "$n" -ge "$count" ]; then t1=$(date +%s%N); break; fi
    if [ "$n" = "$prev" ]; then still=$((still+1)); [ $still -ge 40 ] && break
    else still=0; t1=$(date +%s%N); fi
    prev=$n; sleep 0.05
  done
  local c1; c1=$(cpu_ms $pid)
  local rss; rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill $pid; wait $pid 2>/dev/null || true
  local sent secs; sent=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
  secs=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  python3 -c "
sent, n, secs, cpu, rss, wall = $sent, $n, $secs, $((c1-c0)), $rss, $(( (t1 - t0) / 1000000 )) / 1000
print(f'rsyslog  $proto octet rate {\"$rate\":>7}/s: sent {sent} at {sent/secs:,.0f}/s; written {n} in {wall:.2f}s ({n/wall:,.0f}/s), loss {100.0*(sent-n)/sent:.3f}%, CPU {cpu/wall/10:.0f}% of a core, peak RSS {rss//1024} MB')"
}

cargo build --release -q --bins
hapwatch_case tcp octet 0 2
hapwatch_case tcp lf 0 2
hapwatch_case tcp octet 300000 2
for r in 100000 200000 400000; do hapwatch_case udp lf $r 2; done
rsyslog_case tcp 0 2
for r in 100000 200000 400000; do rsyslog_case udp $r 2; done
