#!/usr/bin/env python3
"""A log with millions of distinct URLs and two hot ones (one first seen
halfway): `python3 bench/many_urls.py LINES OUT`. For the --by url
summary (BENCHMARKS.md, "Millions of URLs")."""
import sys, random
random.seed(3)
n = int(sys.argv[1])
out = open(sys.argv[2], 'w')
w = out.write
for i in range(n):
    s = i // 1000
    ts = "%02d:%02d:%02d" % (10 + s // 3600, (s // 60) % 60, s % 60)
    ms = i % 1000
    if i > n // 2 and i % 97 == 0:
        url = "/late/hot"
    elif i % 89 == 0:
        url = "/early/hot"
    else:
        url = "/item/%d" % random.randrange(n)
    w("Nov 24 %s lb1 haproxy[1]: 10.0.0.%d:%d [24/Nov/2026:%s.%03d] fe be/s%d 0/0/1/%d/%d 200 %d - - ---- 1/1/1/1/0 0/0 \"GET %s HTTP/1.1\"\n" % (ts, i % 250, 1024 + i % 60000, ts, ms, i % 4, i % 50, i % 50 + 2, 100 + i % 9000, url))
