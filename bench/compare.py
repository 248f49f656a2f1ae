#!/usr/bin/env python3
"""Side-by-side timing of hapwatch analyze and halog on the same file.

The runs alternate (halog -srv, halog -pct, hapwatch, ...) so that drift on a
shared machine hits every command alike; the medians and the ratio of lines/s
are printed. Peak RSS of each command comes from GNU time.

    python3 bench/compare.py bench-data/2m.log [ROUNDS]
"""
import statistics
import subprocess
import sys
import time

path = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
hapwatch = "./target/release/hapwatch"
with open(path, "rb") as f:
    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

commands = {
    "halog -srv": (["halog", "-srv"], True),
    "halog -pct": (["halog", "-pct"], True),
    "hapwatch analyze": ([hapwatch, "analyze", path], False),
    "hapwatch analyze --format json": ([hapwatch, "analyze", "--format", "json", path], False),
}


def run(argv, stdin_file):
    stdin = open(path, "rb") if stdin_file else subprocess.DEVNULL
    t0 = time.perf_counter()
    subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def peak_rss_mb(argv, stdin_file):
    stdin = open(path, "rb") if stdin_file else subprocess.DEVNULL
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdin=stdin,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return int(r.stderr.decode().strip().splitlines()[-1]) / 1024


times = {name: [] for name in commands}
for name, (argv, stdin_file) in commands.items():  # warm-up: page cache
    run(argv, stdin_file)
for _ in range(rounds):
    for name, (argv, stdin_file) in commands.items():
        times[name].append(run(argv, stdin_file))

base = statistics.median(times["halog -srv"])
print(f"{path}: {lines} lines, {rounds} alternating rounds, median wall time")
print(f"{'command':34} {'median s':>9} {'lines/s':>12} {'vs halog -srv':>14} {'peak RSS MB':>12}")
for name, (argv, stdin_file) in commands.items():
    m = statistics.median(times[name])
    print(f"{name:34} {m:9.3f} {lines / m:12,.0f} {base / m:13.2f}x {peak_rss_mb(argv, stdin_file):12.1f}")
