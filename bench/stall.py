#!/usr/bin/env python3
"""listen during a database stall: peak RSS (BENCHMARKS.md). Loopback only,
bounded: 2,000,000 lines or 20 s. Usage: stall.py BINARY [listen flags]"""
import subprocess, socket, sqlite3, threading, time, sys, os, tempfile
binary = sys.argv[1]; extra = sys.argv[2:]
d = tempfile.mkdtemp(); db = os.path.join(d, "x.db")
p = subprocess.Popen([binary, "listen", "--db", db, "--tcp", "127.0.0.1:28051"] + extra, stderr=subprocess.PIPE)
p.stderr.readline()
time.sleep(0.5)
def rss(): 
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmHWM"): return int(l.split()[1])
idle = rss()
c = sqlite3.connect(db, isolation_level=None); c.execute("BEGIN IMMEDIATE")
line = '<134>Nov 24 19:00:01 haproxy[1]: 127.0.0.1:1000 [24/Nov/2026:19:00:01.000] fe be_app/srv1 0/0/0/5/5 200 100 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"\n' * 1000
def send():
    s = socket.create_connection(("127.0.0.1", 28051))
    t = time.time(); n = 0
    while n < 2_000_000 and time.time() - t < 20:
        s.sendall(line.encode()); n += 1000
    s.close(); print("sent", n, "in", round(time.time()-t,1))
th = threading.Thread(target=send); th.start()
time.sleep(6); c.execute("ROLLBACK"); c.close()
th.join(); time.sleep(2)
print("idle", idle, "peak", rss())
p.terminate(); p.wait()
