#!/usr/bin/env python3
"""A log read from disk by two builds of hapwatch, then halog and hapwatch
over the copies as each build left them in the page cache, in one run.

    python3 bench/page_cache.py FILE BASELINE [ROUNDS]

BASELINE is another build's binary (e.g. `git worktree add /tmp/base REV`,
built with `CARGO_TARGET_DIR=target-wt`); this tree's is
./target/release/hapwatch. How the kernel holds a file in the page cache
changes what reading it costs, to halog as to hapwatch, and a program that
maps a file it reads from disk decides how (MADV_HUGEPAGE: 2 MiB folios
where the kernel makes them, Linux 6.x with transparent huge pages `madvise`
or `always`). Three copies of FILE, in a temporary directory beside it:

  written   cached as the copy's writes left it (a log rsyslog is writing);
  baseline  dropped from the cache, then read by BASELINE's `analyze
            --threads 1` (ROUNDS times, each from disk: its cold read);
  this      the same with this tree's build.

Printed: each build's cold reads (median wall and CPU, and how much of the
file the page cache then held in 2 MiB folios), then `bench/ab_runs.py`
alternating `halog -srv`, `analyze --threads 1` and `analyze` (this tree's)
over the three copies.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import evict, run_timed  # noqa: E402

HW = "./target/release/hapwatch"


def file_huge_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("FileHugePages:"):
                return int(line.split()[1])
    return 0


def cold(binary, path):
    """One run from disk: wall, CPU, and 2 MiB folios gained (kB)."""
    evict(path)
    before = file_huge_kb()
    wall, cpu = run_timed([binary, "analyze", "--threads", "1", "--format", "json", path], None)
    return wall, cpu, file_huge_kb() - before


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, baseline = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as d:
        copies = {n: os.path.join(d, f"{n}.log") for n in ("written", "baseline", "this")}
        for c in copies.values():
            shutil.copyfile(path, c)
        runs = {"baseline": [], "this": []}
        for _ in range(rounds):
            for name, binary in (("baseline", baseline), ("this", HW)):
                runs[name].append(cold(binary, copies[name]))
        print(f"cold reads, {rounds} each, medians (analyze --threads 1):")
        for name, binary in (("baseline", baseline), ("this", HW)):
            wall, cpu, huge = (statistics.median(x) for x in zip(*runs[name]))
            print(f"  {wall:.3f} s wall  {cpu:.3f} s CPU  {huge / 1024:.0f} MB in 2 MiB folios  {binary}")
        commands = []
        for cmd in (
            "halog -srv < {}",
            HW + " analyze --threads 1 --format json {}",
            HW + " analyze --format json {}",
        ):
            commands += [cmd.format(copies[n]) for n in ("written", "baseline", "this")]
        ab = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ab_runs.py")
        subprocess.run([sys.executable, ab, str(rounds)] + commands, check=True)


if __name__ == "__main__":
    main()
