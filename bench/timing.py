"""One timed run of a command, for the comparison scripts beside this file."""
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
