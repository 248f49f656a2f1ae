#!/usr/bin/env python3
"""Two hapwatch binaries and `halog -srv`, one thread, in turn.

    python3 bench/ab_one_thread.py OLD_BINARY NEW_BINARY FILE [ROUNDS]

Each round runs `OLD analyze --threads 1 --format json FILE`, the same with
NEW, then `halog -srv < FILE`; printed per command: median wall time, median
and least CPU time (user + system, from getrusage of the children). On a VM
whose speed drifts within minutes, only runs taken in turn compare.
Build the old binary apart, e.g.:

    git worktree add /tmp/old REV
    (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release --bin hapwatch)
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import run_timed  # noqa: E402

old, new, path = sys.argv[1:4]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 12
cmds = {
    "old": [old, "analyze", "--threads", "1", "--format", "json", path],
    "new": [new, "analyze", "--threads", "1", "--format", "json", path],
    "halog": ["halog", "-srv"],
}
res = {k: ([], []) for k in cmds}
for _ in range(rounds):
    for k, argv in cmds.items():
        w, c = run_timed(argv, open(path, "rb") if k == "halog" else subprocess.DEVNULL)
        res[k][0].append(w)
        res[k][1].append(c)
for k, (w, c) in res.items():
    print(f"{k:6} wall median {statistics.median(w):.3f} s  "
          f"CPU median {statistics.median(c):.3f} s  CPU least {min(c):.3f} s")
