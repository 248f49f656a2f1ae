#!/usr/bin/env python3
"""Alternating runs of several commands, wall and CPU medians: the
side-by-side figures of BENCHMARKS.md that are not halog_parity.py's.

Usage: bench/ab_runs.py ROUNDS [--fresh PATH] 'COMMAND' 'COMMAND' ...

Each command is a shell line (`halog -e -srv < FILE` reads stdin), output
discarded. The commands take turns within each round, in reverse order
every other round (this VM drifts from one minute to the next). With
--fresh, PATH and its -wal/-shm files are removed before every run (a
`--db` run must not find the last run's checkpoint and read nothing).
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import run_timed  # noqa: E402


def main():
    args = sys.argv[1:]
    if not args or not args[0].isdigit():
        sys.exit(__doc__)
    rounds, args = int(args[0]), args[1:]
    fresh = None
    if args[:1] == ["--fresh"]:
        fresh, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    wall = {c: [] for c in args}
    cpu = {c: [] for c in args}
    for k in range(rounds):
        for c in (args if k % 2 == 0 else args[::-1]):
            if fresh:
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.remove(fresh + suffix)
                    except FileNotFoundError:
                        pass
            w, u = run_timed(["sh", "-c", c], subprocess.DEVNULL)
            wall[c].append(w)
            cpu[c].append(u)
    first = statistics.median(wall[args[0]])
    print(f"{rounds} alternating rounds, medians; speed: the first command's wall / this one's")
    for c in args:
        w = statistics.median(wall[c])
        print(f"{w:8.3f} s wall {statistics.median(cpu[c]):8.3f} s CPU {first / w:6.2f}x  {c}")


if __name__ == "__main__":
    main()
