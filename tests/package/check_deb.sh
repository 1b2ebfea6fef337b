#!/usr/bin/env bash
# Install the Debian package for real, check it, purge it and check nothing is left.
#   tests/package/check_deb.sh [accessd_<version>_all.deb]
# Needs root and apt (.ci/run runs it on the CI machine; it changes the system).
set -euo pipefail
deb=$(realpath "${1:-$(ls accessd_*_all.deb | tail -1)}")
export DEBIAN_FRONTEND=noninteractive
fail() { echo "check_deb: FAIL: $*" >&2; exit 1; }
step() { echo "check_deb: $*"; }

[ "$(id -u)" = 0 ] || fail "needs root (it installs and purges the package)"
dpkg-query -W -f='${db:Status-Status}' accessd 2>/dev/null | grep -q '^installed' && fail "accessd is already installed"

step "apt-get install $deb"
start=$(date +%s%N)
apt-get install -y -qq "$deb" >/dev/null
step "installed in $(( ($(date +%s%N) - start) / 1000000 )) ms (with the dependencies it pulled)"
files=$(mktemp)
dpkg -L accessd | sort > "$files"

step "accessd --version / accessd-cli --version"
want=$(dpkg-query -W -f='${Version}' accessd)
[ "$(accessd --version)" = "accessd $want" ] || fail "accessd --version: $(accessd --version)"
[ "$(accessd-cli --version)" = "accessd-cli $want" ] || fail "accessd-cli --version: $(accessd-cli --version)"

step "accessd --check-config /etc/accessd/accessd.toml"
accessd --check-config /etc/accessd/accessd.toml
grep -q '^protocol = "none"' /etc/accessd/accessd.toml || fail "the shipped config configures a reader"
grep -q '^normal_state = "open"' /etc/accessd/accessd.toml || fail "the shipped config does not keep the relay released while locked"
[ "$(stat -c '%U:%G %a' /etc/accessd/accessd.toml)" = "root:accessd 640" ] || fail "config: $(stat -c '%U:%G %a' /etc/accessd/accessd.toml)"

step "systemd-analyze verify (installed units)"
out=$(systemd-analyze verify /usr/lib/systemd/system/accessd.service /usr/lib/systemd/system/accessd.socket 2>&1) || fail "verify: $out"
if echo "$out" | grep -q accessd; then fail "verify warns: $out"; fi
systemd-analyze security --offline=yes /usr/lib/systemd/system/accessd.service 2>/dev/null | grep "Overall exposure" || true

step "user, groups, directories"
id accessd | grep -q gpio || fail "accessd is not in gpio: $(id accessd)"
id accessd | grep -q spi || fail "accessd is not in spi: $(id accessd)"
id accessd | grep -q dialout || fail "accessd is not in dialout: $(id accessd)"
[ "$(stat -c '%U:%G %a' /var/lib/accessd)" = "accessd:accessd 750" ] || fail "/var/lib/accessd: $(stat -c '%U:%G %a' /var/lib/accessd)"

step "accessd-cli works without a daemon"
accessd-cli osdp genkey | grep -Eq '^[0-9a-f]{32}$' || fail "osdp genkey"
accessd-cli wiegand decode 00101101000000001010001000 | grep -q 'H10301' || fail "wiegand decode"
rc=0; accessd-cli --socket /nonexistent/accessd.sock status >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "status without a daemon: exit $rc, want 3"

step "the bundled paho-mqtt 2.x is the one the installed code imports"
/usr/bin/python3 -I -c "import sys; sys.path[:0] = ['/usr/lib/accessd', '/usr/lib/accessd/vendor']
import paho.mqtt.client as m, accessd.fleet.mqtt
assert m.__file__.startswith('/usr/lib/accessd/vendor/') and hasattr(m, 'CallbackAPIVersion'), m.__file__" \
    || fail "paho-mqtt 2.x is not importable from /usr/lib/accessd/vendor"

step "the installed daemon runs (demo: mock GPIO, as user accessd)"
out=$(timeout -s INT 8 setpriv --reuid=accessd --regid=accessd --init-groups accessd --demo 2>&1) || [ $? -eq 124 ] || true
echo "$out" | grep -q "socket:" || fail "accessd --demo did not start: $out"

step "apt-get purge"
apt-get purge -y -qq accessd >/dev/null
dpkg-query -W -f='${db:Status-Status}' accessd 2>/dev/null | grep -q 'not-installed' \
    || ! dpkg-query -W accessd >/dev/null 2>&1 || fail "accessd still known to dpkg: $(dpkg-query -W -f='${db:Status-Status}' accessd)"
left=""
while read -r f; do
    [ "$f" = "/." ] && continue
    [ -e "$f" ] || continue
    [ -d "$f" ] && dpkg -S "$f" >/dev/null 2>&1 && continue  # a directory another package owns (/usr/bin …)
    left="$left $f"
done < "$files"
for f in /etc/accessd /var/lib/accessd /run/accessd /usr/lib/accessd; do [ -e "$f" ] && left="$left $f"; done
extra=$(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'accessd*' 2>/dev/null || true)
[ -z "$left$extra" ] || fail "left after purge:$left $extra"
step "purged; kept as Debian policy wants: the system user and groups: $(id accessd 2>/dev/null || echo 'none')"
rm -f "$files"
step "ok"
