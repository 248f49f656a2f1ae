#!/usr/bin/env python3
"""Alert latency: from a log line entering hapwatch's socket to its alert
reaching a webhook, with 50,000 msgs/s of other traffic on TCP.

    python3 bench/alert_latency.py [ALERTS] [REORDER_WINDOW]   (default 200 2s)

Starts `hapwatch listen` (webhook sink to a receiver in this script) and
`hapwatch-load` (50,000 msgs/s for the duration), sends ALERTS (default 200)
"Server ... is DOWN" lines over UDP, each for another server, 50 ms apart,
stamped with the current time, and prints p50/p99/max of send -> webhook.
Loopback only; bounded by ALERTS and by time.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WINDOW = sys.argv[2] if len(sys.argv) > 2 else "2s"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
HOOK, LISTEN, METRICS = 27961, 27962, 27963
arrived = {}
posts = {}


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("status") == "firing":
            arrived.setdefault(body["labels"]["server"], time.time())
            key = (body["rule"], body["labels"].get("host"), body["labels"]["backend"], body["labels"].get("server"), body["starts_at"])
            posts[key] = posts.get(key, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


hook = HTTPServer(("127.0.0.1", HOOK), H)
threading.Thread(target=hook.serve_forever, daemon=True).start()
work = tempfile.mkdtemp(prefix="hapwatch-latency.")
rules = os.path.join(work, "rules.toml")
with open(rules, "w") as f:
    f.write(f'[[sinks]]\nkind = "webhook"\nurl = "http://127.0.0.1:{HOOK}/hook"\n')
load_file = os.path.join(ROOT, "bench-data", "load.log")
if not os.path.exists(load_file):
    os.makedirs(os.path.dirname(load_file), exist_ok=True)
    with open(load_file, "wb") as out:
        subprocess.run([os.path.join(BIN, "hapwatch-gen"), "--lines", "200000", "--seed", "7"], stdout=out, check=True)
hw = subprocess.Popen([os.path.join(BIN, "hapwatch"), "listen", "--db", os.path.join(work, "l.db"),
                       "--udp", f"127.0.0.1:{LISTEN}", "--tcp", f"127.0.0.1:{LISTEN}",
                       "--metrics", f"127.0.0.1:{METRICS}", "--rules", rules, "--reorder-window", WINDOW],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
hw.stderr.readline()  # "listening on ..."
seconds = N * 0.05 + 3
load = subprocess.Popen([os.path.join(BIN, "hapwatch-load"), "--lines", load_file, "--proto", "tcp",
                         "--to", f"127.0.0.1:{LISTEN}", "--rate", "50000", "--count", str(int(50000 * seconds)),
                         "--max-seconds", str(int(seconds) + 5)], stdout=subprocess.DEVNULL)
time.sleep(1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = {}
for i in range(N):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    msg = (f"<129>1 {now} lb1 haproxy 1 - - Server be_lat/s{i} is DOWN, reason: Layer4 timeout, "
           "check duration: 2001ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, "
           "0 remaining in queue.")
    sent[f"s{i}"] = time.time()
    u.sendto(msg.encode(), ("127.0.0.1", LISTEN))
    time.sleep(0.05)
deadline = time.time() + 10
while len(arrived) < N and time.time() < deadline:
    time.sleep(0.05)
load.wait(timeout=30)
time.sleep(1)  # the reorder window has let the last DOWN into the state
hw.terminate()
hw.wait(timeout=10)
hook.shutdown()
lat = sorted((arrived[k] - sent[k]) * 1000 for k in sent if k in arrived)
if not lat:
    print("no alert arrived")
    sys.exit(1)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"reorder window {WINDOW}: {len(lat)}/{N} alerts delivered; send -> webhook: "
      f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1]:.1f} ms (with 50,000 msgs/s of other traffic); "
      f"firing alerts posted more than once: {sum(1 for n in posts.values() if n > 1)} of {len(posts)}")
