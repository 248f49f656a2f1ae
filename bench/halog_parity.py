#!/usr/bin/env python3
"""Every halog report beside its hapwatch counterpart, on one file, in one run.

Runs alternate (halog X, hapwatch X, halog Y, hapwatch Y, ... then again) so
that drift on a shared machine hits every command alike. Printed per pair:
median wall time of each, halog's time over hapwatch's (above 1: hapwatch is
faster), peak RSS of each (GNU time), and the CPU time (user + system) of
each, from getrusage of the children.

    python3 bench/halog_parity.py FILE [ROUNDS]

FILE.gz, when it exists beside FILE, adds `zcat FILE.gz | halog -srv`
against `hapwatch analyze FILE.gz`. halog reads the traditional syslog
header (5 fields before the message), as rsyslog's default file template
writes it. FILE (and FILE.gz) are first dropped from the page cache and read
back, so that both tools read them as cached by a read from disk.
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import read_back, run_timed  # noqa: E402

path = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
hw = "./target/release/hapwatch"
with open(path, "rb") as f:
    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

# (name, halog argv read from stdin, hapwatch argv)
pairs = [
    ("-srv / analyze", ["halog", "-srv"], [hw, "analyze", "--format", "json", path]),
    ("-srv / analyze --threads 1", ["halog", "-srv"],
     [hw, "analyze", "--threads", "1", "--format", "json", path]),
    ("-pct / --percentiles", ["halog", "-pct"], [hw, "analyze", "--percentiles", path]),
    ("-st / --by status", ["halog", "-st"], [hw, "analyze", "--by", "status", path]),
    ("-tc / --by termination", ["halog", "-tc"], [hw, "analyze", "--by", "termination", path]),
    ("-cc / --by cookie", ["halog", "-cc"], [hw, "analyze", "--by", "cookie", path]),
    ("-uc / --by url", ["halog", "-uc"], [hw, "analyze", "--by", "url", path]),
    ("-ic / --by client", ["halog", "-ic"], [hw, "analyze", "--by", "client", path]),
    ("-e -srv / --errors", ["halog", "-e", "-srv"],
     [hw, "analyze", "--errors", "--format", "json", path]),
    ("-Q -srv / --queued", ["halog", "-Q", "-srv"],
     [hw, "analyze", "--queued", "--format", "json", path]),
    ("-ad 100 / --accept-holes 100ms", ["halog", "-ad", "100"],
     [hw, "analyze", "--accept-holes", "100ms", path]),
]
if os.path.exists(path + ".gz"):
    pairs.append(("zcat|-srv / analyze .gz",
                  ["sh", "-c", f"zcat {path}.gz | halog -srv"],
                  [hw, "analyze", "--format", "json", path + ".gz"]))


def run(argv, stdin_file):
    return run_timed(argv, open(path, "rb") if stdin_file else subprocess.DEVNULL)


def peak_rss_mb(argv, stdin_file):
    stdin = open(path, "rb") if stdin_file else subprocess.DEVNULL
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdin=stdin,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return int(r.stderr.decode().strip().splitlines()[-1]) / 1024


def halog_stdin(argv):
    return argv[0] == "halog"


# The page cache's folios change what reading a file costs (BENCHMARKS.md,
# "The page cache's folios"): a file still cached from its writes is in
# small ones. Read back from disk first, as either tool would leave it.
for f in (path, path + ".gz"):
    if os.path.exists(f):
        read_back(f)
wall = {(n, s): [] for n, _, _ in pairs for s in ("halog", "hapwatch")}
cpu = {(n, s): [] for n, _, _ in pairs for s in ("halog", "hapwatch")}
for name, h, w in pairs:  # warm-up: page cache
    run(h, halog_stdin(h))
    run(w, False)
for _ in range(rounds):
    for name, h, w in pairs:
        for side, argv, stdin in (("halog", h, halog_stdin(h)), ("hapwatch", w, False)):
            t, c = run(argv, stdin)
            wall[(name, side)].append(t)
            cpu[(name, side)].append(c)

print(f"{path}: {lines:,} lines, {rounds} alternating rounds, medians")
print(f"{'halog / hapwatch':32} {'halog s':>8} {'hapwatch s':>10} {'speed':>7} "
      f"{'halog CPU s':>11} {'hw CPU s':>9} {'halog MB':>9} {'hw MB':>7}")
for name, h, w in pairs:
    mh, mw = statistics.median(wall[(name, "halog")]), statistics.median(wall[(name, "hapwatch")])
    ch, cw = statistics.median(cpu[(name, "halog")]), statistics.median(cpu[(name, "hapwatch")])
    print(f"{name:32} {mh:8.3f} {mw:10.3f} {mh / mw:6.2f}x {ch:11.3f} {cw:9.3f} "
          f"{peak_rss_mb(h, halog_stdin(h)):9.1f} {peak_rss_mb(w, False):7.1f}")
