#!/usr/bin/env python3
"""A sparse log over a long span, for the memory benchmark (BENCHMARKS.md,
"Memory over the time span"): SERVERS servers of be_app, one request per
server per minute, for DAYS days from 2026-08-01, with one DOWN/UP pair of
one server a day. rsyslog's file format (full RFC 3339 date: no year to
guess).

    python3 bench/sparse_log.py DAYS [SERVERS] > sparse.log
"""
import sys
from datetime import datetime, timedelta, timezone

days = int(sys.argv[1])
servers = int(sys.argv[2]) if len(sys.argv) > 2 else 10
start = datetime(2026, 8, 1, tzinfo=timezone.utc)
out = sys.stdout
for minute in range(days * 1440):
    t = start + timedelta(minutes=minute)
    iso = t.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    accept = t.strftime("%d/%b/%Y:%H:%M:%S")
    lines = []
    for s in range(1, servers + 1):
        tr = 5 + (minute * 7 + s * 13) % 40
        status = 503 if (minute + s) % 997 == 0 else 200
        lines.append(
            f'{iso} lb1 haproxy[1]: 10.0.{s}.{minute % 250}:{1024 + minute % 60000} '
            f'[{accept}.{s * 10:03d}] fe be_app/srv{s} 0/0/1/{tr}/{tr + 1} {status} 512 - - ---- '
            f'1/1/0/0/0 0/0 "GET /p{minute % 100} HTTP/1.1"\n'
        )
    if minute % 1440 == 600:
        lines.append(
            f"{iso} lb1 haproxy[1]: Server be_app/srv1 is DOWN, reason: Layer4 timeout, "
            f"check duration: 2001ms. {servers - 1} active and 0 backup servers left. "
            "0 sessions active, 0 requeued, 0 remaining in queue.\n"
        )
    if minute % 1440 == 605:
        lines.append(
            f"{iso} lb1 haproxy[1]: Server be_app/srv1 is UP, reason: Layer7 check passed, "
            f"code: 200, check duration: 1ms. {servers} active and 0 backup servers online. "
            "0 sessions requeued, 0 total in queue.\n"
        )
    out.write("".join(lines))
