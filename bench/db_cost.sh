#!/usr/bin/env bash
# What --db costs `analyze`: alternating runs (this VM drifts by ±5% from
# one minute to the next), medians. Usage: bench/db_cost.sh FILE ROUNDS
#
# The file is read once before every timed run: on a machine that pages out
# cold memory (DAMON's pageout scheme on this VM, or simply memory pressure)
# part of a 400 MB file is otherwise read from disk again, at random, by
# whichever run comes next; that is not the cost of --db.
set -euo pipefail
file=${1:-bench-data/2m.log}; rounds=${2:-15}
bin=./target/release/hapwatch
db=$(mktemp -u /tmp/hapwatch-bench.XXXXXX.db)
plain=(); withdb=()
for _ in $(seq "$rounds"); do
  cat "$file" >/dev/null
  s=$(date +%s%N); "$bin" analyze "$file" >/dev/null; e=$(date +%s%N)
  plain+=($(( (e - s) / 1000000 )))
  rm -f "$db" "$db-wal" "$db-shm"
  cat "$file" >/dev/null
  s=$(date +%s%N); "$bin" analyze --db "$db" "$file" >/dev/null; e=$(date +%s%N)
  withdb+=($(( (e - s) / 1000000 )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${plain[@]}"); d=$(median "${withdb[@]}")
echo "analyze: ${p} ms   analyze --db: ${d} ms   cost: $(awk "BEGIN {printf \"%+.1f%%\", ($d - $p) * 100 / $p}")"
echo "database: $(cat "$db" "$db-wal" 2>/dev/null | wc -c) bytes (file and WAL)"
rm -f "$db" "$db-wal" "$db-shm"
