#!/bin/sh
# Regenerates docs/timeline.png, the README's picture of `hapwatch timeline
# --format html`: the real-HAProxy fixture's incident, rendered by headless
# Chromium (Debian package chromium). Run from the repository's root.
set -eu
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --release -q -- timeline fixtures/haproxy-udp-rfc5424.log --alerts --pad 20s \
    --format html -o "$out/incident.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1000 \
    --screenshot="$out/timeline.png" "file://$out/incident.html" 2>/dev/null
cp "$out/timeline.png" docs/timeline.png
echo "docs/timeline.png"
