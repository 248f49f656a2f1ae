#!/usr/bin/env python3
"""Many server names: NAMES servers (`be{i/1000}/s{i%1000}`, as
bench/cardinality.py names them) on one load balancer, each sent one request
a minute for MINUTES minutes, in rsyslog's traditional file format.

Usage: bench/many_names.py NAMES MINUTES > FILE
(100000 10: the 1,000,000-line file of BENCHMARKS.md's "Many server names".)
"""
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    names, minutes = int(sys.argv[1]), int(sys.argv[2])
    out = sys.stdout
    for m in range(minutes):
        hh, mm = 19 + m // 60, m % 60
        head = f"Nov 24 {hh:02}:{mm:02}:01 lb1 haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:{hh:02}:{mm:02}:01.000] fe "
        tail = ' 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"\n'
        out.write("".join(f"{head}be{i // 1000}/s{i % 1000}{tail}" for i in range(names)))


if __name__ == "__main__":
    main()
