#!/usr/bin/env bash
# The README's "Running it as a service" commands, run as pasted under a
# real systemd: systemd boots as PID 1 in new pid, mount, net, uts and ipc
# namespaces (loopback only; private /tmp, /var/tmp and /run, because
# systemd-tmpfiles empties /tmp at boot), the README's two shell blocks run
# inside it from a directory laid out like a checkout (target/release,
# contrib), then what they installed is removed.
#
# Usage (root): service.sh REPO HAPWATCH_BINARY
# Exit 0: every command worked and said what the README says; 77: skipped
# (a hapwatch installation exists here and is not touched); else failed.
set -euo pipefail
repo=$1 bin=$2

for f in /usr/local/bin/hapwatch /etc/systemd/system/hapwatch.service \
         /etc/rsyslog.d/48-hapwatch.conf /var/lib/hapwatch; do
    if [ -e "$f" ]; then echo "skip: $f exists (an installation is not touched)"; exit 77; fi
done
if id hapwatch >/dev/null 2>&1; then echo "skip: user hapwatch exists"; exit 77; fi

# Not under /tmp or /var/tmp, which the namespace hides (nor in the
# checkout, which may be under /tmp).
work=$(mktemp -d /var/lib/hapwatch-service-test.XXXXXX)
mkdir -p "$work/target/release" "$work/contrib"
cp "$bin" "$work/target/release/hapwatch"
cp "$repo/contrib/hapwatch.service" "$repo/contrib/48-hapwatch.conf" "$work/contrib/"
# The README's ```sh blocks of the section, as they are written there.
awk '/^### Running it as a service/,/^## Alerts/' "$repo/README.md" |
    awk -v dir="$work" '/^```sh/{f=1;n++;next} /^```/{f=0} f{print > (dir "/block" n ".sh")}'
[ -s "$work/block1.sh" ] && [ -s "$work/block2.sh" ] || { echo "README: no service blocks"; exit 1; }

cat > "$work/boot.sh" <<'BOOT'
#!/bin/sh
set -e
ip link set lo up
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd
exec /lib/systemd/systemd --system --unit=basic.target --log-target=console --log-level=warning
BOOT
chmod +x "$work/boot.sh"

pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    sleep 0.5
    userdel hapwatch 2>/dev/null || true
    rm -rf /usr/local/bin/hapwatch /etc/systemd/system/hapwatch.service \
        /etc/systemd/system/multi-user.target.wants/hapwatch.service \
        /etc/rsyslog.d/48-hapwatch.conf /var/lib/hapwatch "$work"
}
trap cleanup EXIT

unshare --pid --fork --mount --net --uts --ipc --propagation private "$work/boot.sh" \
    >"$work/boot.log" 2>&1 </dev/null &
shell=$!
for _ in $(seq 100); do
    pid=$(pgrep -P "$shell" | head -1) || true
    [ -n "$pid" ] && break
    sleep 0.1
done
[ -n "$pid" ] || { echo "systemd did not start"; cat "$work/boot.log"; exit 1; }
in_ns() { nsenter -t "$pid" -p -m -n -u -i --wd="$work" "$@"; }
state=
for _ in $(seq 300); do
    state=$(in_ns systemctl is-system-running 2>/dev/null) || true
    case $state in running|degraded) break ;; esac
    sleep 0.1
done
case $state in running|degraded) ;; *) echo "systemd: $state"; cat "$work/boot.log"; exit 1 ;; esac

echo "== block 1 (install, enable --now)"
in_ns bash -ex "$work/block1.sh"
in_ns systemctl is-active hapwatch
[ "$(in_ns systemctl show -p Type --value hapwatch)" = notify ]
echo "== block 2 (is it receiving?)"
out=$(in_ns bash -x "$work/block2.sh" 2>&1)
echo "$out"
grep -q 'hapwatch_messages_received_total{listener="tcp://127.0.0.1:5514"}' <<<"$out"
grep -Eq 'firing +critical .*be_app/srv1 on .* is DOWN' <<<"$out"
grep -Eq 'be_app +srv1 +DOWN .*Layer4 timeout' <<<"$out"
echo "== through rsyslog (Debian's configuration, the 48- snippet)"
in_ns logger -t haproxy 'Server be_app/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.'
for _ in $(seq 100); do
    status=$(in_ns sudo -u hapwatch hapwatch status)
    grep -Eq 'be_app +srv2 +DOWN' <<<"$status" && break
    sleep 0.1
done
echo "$status"
grep -Eq 'be_app +srv2 +DOWN' <<<"$status"
echo "== stop"
in_ns systemctl stop hapwatch
in_ns journalctl -u hapwatch --no-pager -o cat | tail -5
[ "$(stat -c '%a %U' /var/lib/hapwatch/hapwatch.db)" = "600 hapwatch" ]
echo "service.sh: every command of the README's service section worked as pasted"
