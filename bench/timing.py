"""One timed run of a command, and a file dropped from the page cache, for
the comparison scripts beside this file."""
import os
import resource
import subprocess
import time


def run_timed(argv, stdin):
    """Runs argv (output discarded): its wall time and CPU time (user +
    system, from getrusage of the children), in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def evict(path):
    """Drops a file's pages from the page cache (written back first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_back(path):
    """Drops a file from the page cache and reads it back with read(): the
    state any reader leaves a log it reads from disk in (on Linux 6.18 with
    ext4, 2 MiB folios), whatever state its writes left it in."""
    evict(path)
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
