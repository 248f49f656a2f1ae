#!/usr/bin/env python3
"""listen with many distinct server names (BENCHMARKS.md, issue 12 point 1).
Loopback only; bounded in names and time. Usage:
  [CAP=N] cardinality.py BINARY NAMES [UDP_RATE UDP_SECONDS]
Sends NAMES request lines over TCP, each for a new server, waits until the
database holds them (or CAP of them: --max-servers CAP, default NAMES + 1),
then reports RSS, idle CPU over 10 s, the time of a commit that changes one
server among all those known, the size and time of one /metrics scrape,
the names dropped past the cap, and optionally a UDP feed of UDP_RATE
msg/s for UDP_SECONDS to the known servers (lines counted vs sent, kernel
drops), scraped every SCRAPE_EVERY seconds meanwhile (default 5)."""
import os, socket, sqlite3, subprocess, sys, tempfile, time

binary, names = sys.argv[1], int(sys.argv[2])
rate = int(sys.argv[3]) if len(sys.argv) > 3 else 0
secs = int(sys.argv[4]) if len(sys.argv) > 4 else 0
cap = int(os.environ.get("CAP", names + 1))
kept = min(names, cap)
d = tempfile.mkdtemp()
db = os.path.join(d, "x.db")
p = subprocess.Popen([binary, "listen", "--db", db, "--tcp", "127.0.0.1:28111",
                      "--udp", "127.0.0.1:28111", "--metrics", "127.0.0.1:28112",
                      "--max-servers", str(cap)], stderr=subprocess.PIPE)
p.stderr.readline()

def status(field):
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith(field):
            return int(l.split()[1])

def cpu():
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def line(i, host="lb1"):
    return (f'<134>Nov 24 19:00:01 {host} haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:19:00:01.000] '
            f'fe be{i // 1000}/s{i % 1000} 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"\n')

t0 = time.time()
s = socket.create_connection(("127.0.0.1", 28111))
batch = []
for i in range(names):
    batch.append(line(i))
    if len(batch) == 1000:
        s.sendall("".join(batch).encode()); batch = []
s.sendall("".join(batch).encode())
c = sqlite3.connect(db)
while True:
    try:
        n = c.execute("SELECT count(*) FROM servers").fetchone()[0]
    except sqlite3.OperationalError:
        n = 0
    if n >= kept or time.time() - t0 > 600:
        break
    time.sleep(0.5)
took = time.time() - t0
time.sleep(3)
rss = status("VmRSS:")
c0 = cpu(); time.sleep(10); idle = (cpu() - c0) / 10
# One more request for a known server: the next commit changes one row.
s.sendall(line(7).encode())
time.sleep(0.5)

def scrape(keep=True):
    """One /metrics: (body, seconds). Read as Prometheus does, to the end
    of the chunked body, into one reused buffer; decoded only when `keep`
    (the scrapes during the UDP feed only time it: a Python decoder on one
    of the two cores would take CPU from hapwatch's receiver)."""
    t = time.time()
    m = socket.create_connection(("127.0.0.1", 28112))
    m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = bytearray(1 << 20)
    parts = []
    while True:
        n = m.recv_into(buf)
        if not n:
            break
        if keep:
            parts.append(bytes(buf[:n]))
    m.close()
    took = time.time() - t
    return (dechunk(b"".join(parts)) if keep else b""), took

def dechunk(raw):
    """The body of an HTTP/1.1 response, decoded if it came chunked."""
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return body
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        n = int(body[i:j].split(b";")[0], 16)
        if n == 0:
            return b"".join(out)
        out.append(body[j + 2:j + 2 + n])
        i = j + 2 + n + 2

peak_before = status("VmHWM:")

head, took_scrape = scrape()
size = len(head)
DROPPED = 'hapwatch_series_dropped_total{kind="server"}'
vals = {}
for l in head.decode(errors="replace").splitlines():
    for k in ("hapwatch_db_batch_seconds", DROPPED):
        if l.startswith(k + " ") or l.startswith(k + "{} "):
            vals[k] = int(float(l.split()[-1]))
print(f"names {names} (kept {kept}): stored in {took:.1f} s, RSS {rss/1024:.0f} MB (peak {peak_before/1024:.0f} MB, {status('VmHWM:')/1024:.0f} MB with a scrape), "
      f"idle CPU {idle*100:.2f}% of a core, one-row commit {vals.get('hapwatch_db_batch_seconds', 0)*1000:.1f} ms, "
      f"/metrics {size/1e6:.1f} MB in {took_scrape:.2f} s, dropped {vals.get(DROPPED, 0)}")
if rate:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    msgs = [line(i % names).rstrip("\n").encode() for i in range(1000)]
    # Scrapes of every series meanwhile (SCRAPE_EVERY seconds, default 5;
    # 0: none), on their own thread as Prometheus would.
    every = float(os.environ.get("SCRAPE_EVERY", 5))
    scrapes = []
    import threading
    def scraper():
        while every and time.time() - t1 < secs:
            time.sleep(every)
            scrapes.append(scrape(keep=False)[1])
    sent = 0; t1 = time.time()
    th = threading.Thread(target=scraper); th.start()
    while time.time() - t1 < secs:
        target = int((time.time() - t1) * rate)
        while sent < target:
            u.sendto(msgs[sent % 1000], ("127.0.0.1", 28111)); sent += 1
        time.sleep(0.001)
    th.join()
    time.sleep(3)
    buf, _ = scrape(); got = None; drops = 0; kinds = []
    for l in buf.decode(errors="replace").splitlines():
        if l.startswith("hapwatch_lines_total"):
            got = int(float(l.split()[-1]))
        if l.startswith("hapwatch_udp_kernel_drops_total") or l.startswith("hapwatch_udp_app_drops_total"):
            drops += int(float(l.split()[-1]))
            kinds.append(l.replace("hapwatch_udp_", "").replace("_drops_total", ""))
    print(f"UDP {rate}/s for {secs} s: sent {sent}, lines {got - names if got else None}, drops {drops}, "
          f"({', '.join(kinds)}), {len(scrapes)} scrapes meanwhile ({', '.join(f'{x:.2f}' for x in scrapes)} s)")
p.terminate(); p.wait()
