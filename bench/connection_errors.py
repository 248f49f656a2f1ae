#!/usr/bin/env python3
"""A log of request lines and connection errors: the first 100,000 lines of
FILE, then COUNT embryonic-session errors as HAProxy logs them (client,
accept date, frontend/listener, `SSL handshake failure` or one of
conn_err_code_str()'s messages), one in three without the client and date
in front, and no request line among them. What "Health lines" in
BENCHMARKS.md times the messages no request parser reads with.

Usage: bench/connection_errors.py FILE COUNT > OUT
(bench-data/2m.log 100000: the mixed file of that section.)
"""
import itertools
import sys

ERRORS = [
    "SSL handshake failure",
    "SSL handshake failure (error:0A000126:SSL routines::unexpected eof while reading)",
    "Connection closed during SSL handshake",
    "Timeout during SSL handshake",
    "Received something which does not look like a PROXY protocol header",
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, count = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    with open(path, "rb") as f:
        for line in itertools.islice(f, 100_000):
            out.buffer.write(line)
    out.flush()
    for i in range(count):
        mm, ss = i // 6000 % 60, i // 100 % 60
        error = ERRORS[i % len(ERRORS)]
        head = f"Nov 24 10:{mm:02}:{ss:02} lb1 haproxy[4001]: "
        if i % 3 == 2:
            out.write(f"{head}fe_https/1: {error}\n")
        else:
            client = f"10.0.{i % 250}.{i % 200}:{1024 + i % 60000}"
            out.write(f"{head}{client} [24/Nov/2026:10:{mm:02}:{ss:02}.{i % 1000:03}] fe_https/1: {error}\n")


if __name__ == "__main__":
    main()
