#!/usr/bin/env python3
"""Shards on one machine: 4 `hapwatch listen` shards x 25 simulated load
balancers each, over UDP on loopback (docs/SCALING.md).

    python3 bench/shards.py [LINES_PER_SECOND_PER_LB] [SECONDS]   (default 1000 20)

The log of 100 load balancers (`hapwatch-gen --hosts 100`) is split by host:
shard k receives lb(25k+1)..lb(25k+25), as an rsyslog relay forwarding per
host would send them. Each shard gets its share at LB_RATE x 25 lines/s
from its own `hapwatch-load` (UDP, two sender threads), and, meanwhile, 40
"Server ... is DOWN" lines of one of its hosts, 100 ms apart, dated where
the replayed log is,
whose alerts go to one webhook receiver in this script. Printed per shard:
lines/s processed, loss (kernel + queue drops, from its /metrics), alert
latency (send -> webhook), CPU and peak RSS. Loopback only; bounded by
count and time.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

LB_RATE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
SHARDS, PER_SHARD = 4, 25
PROBES = int(os.environ.get("PROBES", "40"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
HOOK = 28301
UDP = [28311 + k for k in range(SHARDS)]
METRICS = [28321 + k for k in range(SHARDS)]
arrived = {}


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("status") == "firing" and body["labels"].get("backend") == "be_probe":
            arrived.setdefault(body["labels"]["server"], time.time())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def metrics(port):
    text = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
    return out


def proc(pid):
    with open(f"/proc/{pid}/stat") as f:
        f = f.read().rsplit(")", 1)[1].split()
    cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as s:
        hwm = next(int(l.split()[1]) for l in s if l.startswith("VmHWM:"))
    return cpu, hwm / 1024


data = os.path.join(ROOT, "bench-data")
os.makedirs(data, exist_ok=True)
whole = os.path.join(data, "100lb.log")
if not os.path.exists(whole):
    with open(whole, "wb") as out:
        subprocess.run([os.path.join(BIN, "hapwatch-gen"), "--lines", "2000000", "--hosts", "100", "--seed", "11"], stdout=out, check=True)
parts = [os.path.join(data, f"100lb-shard{k}.log") for k in range(SHARDS)]
if not all(os.path.exists(p) for p in parts):
    outs = [open(p, "wb") for p in parts]
    with open(whole, "rb") as f:
        for line in f:
            host = int(line.split(b" ", 4)[3][2:])  # "Nov 24 10:00:00 lbN ..."
            outs[(host - 1) // PER_SHARD].write(line)
    for o in outs:
        o.close()

hook = HTTPServer(("127.0.0.1", HOOK), H)
threading.Thread(target=hook.serve_forever, daemon=True).start()
work = tempfile.mkdtemp(prefix="hapwatch-shards.")
rules = os.path.join(work, "rules.toml")
with open(rules, "w") as f:
    f.write(f'[[sinks]]\nkind = "webhook"\nurl = "http://127.0.0.1:{HOOK}/hook"\n')
shards = []
for k in range(SHARDS):
    p = subprocess.Popen([os.path.join(BIN, "hapwatch"), "listen", "--db", os.path.join(work, f"s{k}.db"),
                          "--udp", f"127.0.0.1:{UDP[k]}", "--metrics", f"127.0.0.1:{METRICS[k]}", "--rules", rules],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stderr.readline()  # "listening on ..."
    shards.append(p)
rate = LB_RATE * PER_SHARD
loads = [subprocess.Popen([os.path.join(BIN, "hapwatch-load"), "--lines", parts[k], "--proto", os.environ.get("PROTO", "udp"), "--senders", "1",
                           "--to", f"127.0.0.1:{UDP[k]}", "--rate", str(rate), "--count", str(rate * SECONDS),
                           "--max-seconds", str(SECONDS + 10)], stdout=subprocess.DEVNULL)
         for k in range(SHARDS)]
t0 = time.time()
time.sleep(1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = {}
# The probes are dated where the replayed log is (its RFC 3164 dates,
# not the wall clock): a line dated a week after the rest would make every
# other line late (see docs/SCALING.md, "Late lines").
first = datetime.strptime("2026 " + open(parts[0], "rb").readline()[:15].decode(), "%Y %b %d %H:%M:%S")
per_gen_second = sum(1 for _ in open(parts[0], "rb")) / 2000.0  # the generator's 2,000 s per shard file
for i in range(PROBES):
    for k in range(SHARDS):
        at = first + timedelta(seconds=(time.time() - t0) * rate / per_gen_second)
        name = f"p{k}_{i}"
        msg = (f"<129>{at.strftime('%b %d %H:%M:%S')} lb{k * PER_SHARD + 1} haproxy[1]: Server be_probe/{name} is DOWN, "
               "reason: Layer4 timeout, check duration: 2001ms. 1 active and 0 backup servers left. "
               "0 sessions active, 0 requeued, 0 remaining in queue.")
        sent[name] = time.time()
        u.sendto(msg.encode(), ("127.0.0.1", UDP[k]))
    time.sleep(0.1)
for l in loads:
    l.wait(timeout=SECONDS + 30)
elapsed = time.time() - t0
# Until every shard has taken what it received (or 10 s).
deadline = time.time() + 10
prev = None
while time.time() < deadline:
    now = [metrics(m).get("hapwatch_lines_total", 0) for m in METRICS]
    if now == prev:
        break
    prev = now
    time.sleep(0.5)
deadline = time.time() + 5
while len(arrived) < len(sent) and time.time() < deadline:
    time.sleep(0.1)
print(f"{SHARDS} shards x {PER_SHARD} load balancers, {LB_RATE} lines/s each offered "
      f"({rate:,} lines/s per shard, {rate * SHARDS:,} in all) for {SECONDS} s")
print("| shard | offered | processed lines/s | loss | alert p50 | alert p99 | CPU | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
total_lines = 0
for k, p in enumerate(shards):
    m = metrics(METRICS[k])
    lines = m.get("hapwatch_lines_total", 0)
    total_lines += lines
    received = m.get("hapwatch_messages_received_total", 0)
    drops = m.get("hapwatch_udp_kernel_drops_total", 0) + m.get("hapwatch_udp_app_drops_total", 0)
    offered = rate * SECONDS + PROBES
    lat = sorted((arrived[n] - sent[n]) * 1000 for n in sent if n.startswith(f"p{k}_") and n in arrived)
    q = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))] if lat else float("nan")
    cpu, rss = proc(p.pid)
    print(f"| {k} | {offered:,} | {lines / elapsed:,.0f} | {drops / max(1, received + drops) * 100:.3f}% "
          f"({int(drops)}) | {q(0.5):.1f} ms | {q(0.99):.1f} ms ({len(lat)}/{PROBES}) | "
          f"{cpu / elapsed * 100:.0f}% | {rss:.0f} MB |")
print(f"all shards: {total_lines / elapsed:,.0f} lines/s processed over {elapsed:.1f} s")
for p in shards:
    p.terminate()
    p.wait(timeout=15)
hook.shutdown()
