#!/usr/bin/env python3
"""What `listen --db` writes to disk while many servers take traffic.
Loopback only; bounded in names, seconds and time. Usage:
  steady_io.py BINARY NAMES SECONDS [HISTORY]
First stores HISTORY minutes (default 30) of one request a minute for each
of NAMES servers (`be{i/1000}/s{i%1000}`), as fast as they are taken; then
sends, once a second for SECONDS seconds, one request line for each
server, event time advancing a second each round from the minute after
(a minute's row is written again by every commit of that minute, as in a
live feed), over TCP. Prints the bytes the process wrote to the file
system meanwhile (/proc/PID/io `write_bytes`, what reaches the disk: WAL
frames and checkpoints), per round and in all, the CPU time it used
meanwhile, and the database's size."""
import os, socket, sqlite3, subprocess, sys, tempfile, time

binary, names, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
history = int(sys.argv[4]) if len(sys.argv) > 4 else 30
d = tempfile.mkdtemp()
db = os.path.join(d, "x.db")
p = subprocess.Popen([binary, "listen", "--db", db, "--tcp", "127.0.0.1:28121",
                      "--udp", "127.0.0.1:28121", "--max-servers", str(names + 1)],
                     stderr=subprocess.PIPE)
p.stderr.readline()


def written():
    for l in open(f"/proc/{p.pid}/io"):
        if l.startswith("write_bytes:"):
            return int(l.split()[1])


def cpu():
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def stored(c):
    try:
        return c.execute("SELECT count(*) FROM rollups").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


s = socket.create_connection(("127.0.0.1", 28121))
c = sqlite3.connect(db)


def round_(k):
    """The requests of second `k` after 18:00:00 (event time)."""
    hh, rest = divmod(k, 3600)
    mm, ss = divmod(rest, 60)
    at = f"{18 + hh:02}:{mm:02}:{ss:02}"
    head = (f"<134>Nov 24 {at} lb1 haproxy[1]: 127.0.0.1:1000 "
            f"[24/Nov/2026:{at}.000] fe ")
    tail = ' 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"\n'
    s.sendall("".join(f"{head}be{i // 1000}/s{i % 1000}{tail}" for i in range(names)).encode())


# The history stored before the measure starts.
for m in range(history):
    round_(m * 60)
t0 = time.time()
while stored(c) < names * history and time.time() - t0 < 600:
    time.sleep(0.5)
time.sleep(2)
w0, c0 = written(), cpu()
t1 = time.time()
for k in range(1, secs + 1):
    round_(history * 60 + k)
    time.sleep(max(0, t1 + k - time.time()))
time.sleep(2)
w, used = written() - w0, cpu() - c0
p.terminate()
p.wait(timeout=60)
size = sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
print(f"{names} servers, {secs} rounds: {w / 1e6:.1f} MB written ({w / 1e6 / secs:.2f} MB a round), "
      f"{used:.2f} s of CPU ({used / secs * 100:.0f}% of a core), database {size / 1e6:.1f} MB")
