#!/bin/sh
# Before/after of the per-line parsers (criterion, benches/parsers.rs) for a
# change: the benches of REV (default: HEAD, i.e. without the uncommitted
# change) are saved as criterion's baseline `before`, then the working tree's
# are measured against it, and a table says per parser the time per line
# before, after, and the change. No CI needed; run it on an idle machine.
#
#   bench/parsers_compare.sh [REV] [CRITERION ARGS...]
#   bench/parsers_compare.sh HEAD~1 --measurement-time 3
#
# Both sides build into one target directory (criterion keeps its baselines
# there), REV in a temporary git worktree.
set -eu
rev=${1:-HEAD}
[ $# -gt 0 ] && shift
root=$(git rev-parse --show-toplevel)
target=${CARGO_TARGET_DIR:-$root/target}
tree=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT
git -C "$root" worktree add --detach --quiet "$tree" "$rev"
# A bench that REV lacks cannot be compared: benches/parsers.rs of REV runs.
(cd "$tree" && CARGO_TARGET_DIR=$target cargo bench --quiet --bench parsers -- --save-baseline before "$@" >/dev/null)
(cd "$root" && CARGO_TARGET_DIR=$target cargo bench --quiet --bench parsers -- --baseline before "$@" >/dev/null)
python3 - "$target/criterion" "$rev" <<'EOF'
import json, os, sys
root, rev = sys.argv[1], sys.argv[2]
def point(path):
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]
rows = []
for group in sorted(os.listdir(root)):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir) or group == "report":
        continue
    for name in sorted(os.listdir(gdir)):
        before = os.path.join(gdir, name, "before", "estimates.json")
        after = os.path.join(gdir, name, "new", "estimates.json")
        if os.path.exists(before) and os.path.exists(after):
            b, a = point(before), point(after)
            rows.append((f"{group}/{name}", b, a, (a - b) / b * 100))
print(f"{'parser':40} {rev + ' ns':>12} {'now ns':>10} {'change':>8}")
for n, b, a, c in rows:
    print(f"{n:40} {b:12.1f} {a:10.1f} {c:+7.1f}%")
EOF
