#!/usr/bin/env python3
"""Writes the fuzz corpus seeds (fuzz/corpus/TARGET/) from the repository's
own data: the captured fixtures, the pattern files, the README's rule and
config examples. Run from the repository root; the output is committed."""
import os, re, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus"
fixtures = sorted((root / "fixtures").glob("*.log")) + sorted((root / "fixtures" / "variants").glob("*.log"))
console = sorted((root / "fixtures" / "console").glob("haproxy-*.log"))

def put(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

def lines(path):
    return path.read_bytes().splitlines()

# HAProxy's console copies beside its log lines (fixtures/console/): every
# line that is not a request, so that each pair is in the seed.
for f in console:
    health = [l for l in lines(f) if b"GET /" not in l]
    put("lines", "console-" + f.stem, b"\n".join(health) + b"\n")

for f in fixtures:
    ls = lines(f)
    stem = f.stem
    # Whole lines through the engine: 40 spread over each capture.
    put("lines", stem, b"\n".join(ls[::max(1, len(ls) // 40)][:40]) + b"\n")
    # Syslog headers: a few lines of each form.
    for i, l in enumerate(ls[:3]):
        put("syslog", f"{stem}-{i}", l)
    # Messages after the header: requests and health messages.
    msgs = [l.split(b"]: ", 1)[1] for l in ls if b"]: " in l]
    reqs = [m for m in msgs if re.match(rb"^[0-9a-f:.\[\]]+:\d+ \[", m)]
    for i, m in enumerate(reqs[:4]):
        put("request", f"{stem}-{i}", m)
    health = [m for m in msgs if re.match(rb"^(Server|Backup Server|backend|Health check|Agent check|Proxy)", m)]
    for i, m in enumerate(health[:6]):
        put("health", f"{stem}-{i}", m)

# The journal's records of many lines (`-o export`, `json-pretty`, `verbose`), as
# `analyze` reads a saved journal: a few messages of a capture.
import json
msgs = lines(root / "fixtures" / "haproxy-udp-rfc3164.log")[:6]
export, pretty, verbose = b"", b"", b""
for i, m in enumerate(msgs):
    us = b"%d" % (1795537394123456 + i * 1000)
    export += b"__REALTIME_TIMESTAMP=" + us + b"\n_HOSTNAME=lb1\nSYSLOG_IDENTIFIER=haproxy\nMESSAGE=" + m + b"\n\n"
    text = json.dumps(m.decode("utf-8", "replace")).encode()
    pretty += b'{\n\t"__REALTIME_TIMESTAMP" : "' + us + b'",\n\t"_HOSTNAME" : "lb1",\n\t"MESSAGE" : ' + text + b"\n}\n"
    verbose += b"Mon 2026-11-24 18:34:18.%06d UTC [s=4393;i=%x;b=1ba4;m=7d22;t=%x;x=d7d8]\n" % (i, i, int(us))
    verbose += b"    _HOSTNAME=lb1\n    SYSLOG_IDENTIFIER=haproxy\n    MESSAGE=" + m + b"\n"
put("lines", "journal-export", export)
put("lines", "journal-verbose", verbose)
put("lines", "journal-pretty", pretty)

# Framing: [max-frame selector, read size] + a stream of both framings.
sample = [l for l in lines(root / "fixtures" / "haproxy-udp-rfc3164.log")[:6]]
octet = b"".join(b"%d %s" % (len(l), l) for l in sample)
lf = b"".join(l + b"\n" for l in sample)
put("framing", "octet", bytes([15, 7]) + octet)
put("framing", "lf", bytes([15, 200]) + lf)
put("framing", "mixed-oversized", bytes([2, 3]) + octet[:200] + b"99999 " + b"x" * 80 + lf)
put("framing", "malformed", bytes([8, 1]) + b"12345678901234 " + lf)

for p in sorted((root / "patterns").glob("*.toml")):
    put("patterns", p.name, p.read_bytes())

readme = (root / "README.md").read_text()
blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
for i, b in enumerate(blocks):
    put("rules", f"readme-{i}", b)
put("config", "listen", 'udp = ["127.0.0.1:5514"]\ntcp = ["127.0.0.1:5514"]\nmax_frame = 65536\n'
    'idle_timeout = "10m"\nfirst_frame_timeout = "10s"\nallow = ["10.0.0.0/8"]\n'
    'queue_bytes = "256MiB"\nunix_mode = "0660"\nmax_skew = "10m"\nreorder_window = "2s"\n')
put("config", "small", 'metrics = "127.0.0.1:9464"\nmax_servers = 1000\nqueue_bytes = 1048576\n')
