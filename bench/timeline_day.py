#!/usr/bin/env python3
"""A day of HAProxy log for `hapwatch timeline`'s speed (BENCHMARKS.md,
issue 13 point 7). Usage: timeline_day.py OUT LINES [SERVERS]
Writes LINES request lines spread evenly over 24 h (2026-11-24, RFC 5424
headers, host lb1) to SERVERS servers (default 300: 10 backends of 30),
and 48 incidents (one every 30 minutes): a server fails two checks, goes
DOWN for 2 minutes (its requests answered 503 meanwhile), comes back
after two good checks; every fourth incident takes the whole backend down
for 1 minute (`has no server available!`)."""
import sys

out, lines = sys.argv[1], int(sys.argv[2])
servers = int(sys.argv[3]) if len(sys.argv) > 3 else 300
per = 30
backends = max(1, servers // per)
DAY = 86_400_000
T0 = 1_795_478_400_000  # 2026-11-24T00:00:00Z


def stamp(ms):
    s, ms = divmod(ms, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"2026-11-24T{h:02}:{m:02}:{s:02}.{ms:03}000+00:00", f"24/Nov/2026:{h:02}:{m:02}:{s:02}.{ms:03}"


events = []  # (ms of day, text)
for k in range(48):
    at = k * 1_800_000 + 600_000
    b, srv = k % backends, (k * 7) % per
    name = f"be{b}/s{srv}"
    events.append((at - 600, f"<133>1 {{t}} lb1 haproxy 1 - - Health check for server {name} failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms, status: 1/2 UP."))
    events.append((at, f"<133>1 {{t}} lb1 haproxy 1 - - Health check for server {name} failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms, status: 0/2 DOWN."))
    events.append((at, f"<129>1 {{t}} lb1 haproxy 1 - - Server {name} is DOWN. {per - 1} active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."))
    if k % 4 == 3:
        for s2 in range(per):
            if s2 != srv:
                events.append((at + 10 + s2, f"<129>1 {{t}} lb1 haproxy 1 - - Server be{b}/s{s2} is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."))
                events.append((at + 60_000 + s2, f"<133>1 {{t}} lb1 haproxy 1 - - Server be{b}/s{s2} is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."))
        events.append((at + 100, f"<128>1 {{t}} lb1 haproxy 1 - - backend be{b} has no server available!"))
    events.append((at + 119_700, f"<133>1 {{t}} lb1 haproxy 1 - - Health check for server {name} succeeded, reason: Layer4 check passed, check duration: 0ms, status: 1/2 DOWN."))
    events.append((at + 120_000, f"<133>1 {{t}} lb1 haproxy 1 - - Health check for server {name} succeeded, reason: Layer4 check passed, check duration: 0ms, status: 2/2 UP."))
    events.append((at + 120_000, f"<133>1 {{t}} lb1 haproxy 1 - - Server {name} is UP, reason: Layer4 check passed, check duration: 0ms. {per} active and 0 backup servers online. 0 sessions requeued, 0 total in queue."))
events.sort()
down = {}  # name -> (from, to)
for k in range(48):
    at = k * 1_800_000 + 600_000
    down[f"be{k % backends}/s{(k * 7) % per}"] = down.get(f"be{k % backends}/s{(k * 7) % per}", []) + [(at, at + 120_000)]

step = DAY / lines
ev = 0
with open(out, "w") as f:
    buf = []
    for i in range(lines):
        ms = int(i * step)
        while ev < len(events) and events[ev][0] <= ms:
            buf.append(events[ev][1].replace("{t}", stamp(events[ev][0])[0]))
            ev += 1
        name = f"be{(i // per) % backends}/s{i % per}"
        st = 200
        for a, b in down.get(name, ()):
            if a <= ms < b:
                st = 503
        t5424, thap = stamp(ms)
        tr = 5 + (i * 7919) % 40
        buf.append(f"<134>1 {t5424} lb1 haproxy 1 - - 127.0.0.1:{1024 + i % 60000} [{thap}] fe {name} 0/0/1/{tr}/{tr + 1} {st} 512 - - ---- 10/10/1/1/0 0/0 \"GET /x HTTP/1.1\"")
        if len(buf) >= 10000:
            f.write("\n".join(buf) + "\n")
            buf = []
    while ev < len(events):
        buf.append(events[ev][1].replace("{t}", stamp(events[ev][0])[0]))
        ev += 1
    f.write("\n".join(buf) + "\n")
