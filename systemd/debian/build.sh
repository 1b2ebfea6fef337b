#!/usr/bin/env bash
# `make deb`: build accessd_<version>_all.deb with dpkg-deb alone (no debhelper needed).
#   systemd/debian/build.sh [OUTDIR]      (default: the top of the checkout)
# The code goes to /usr/lib/accessd (accessd, accessd.protocols, accessd.wiring, as
# setup.cfg's package_dir maps them) with gpiozero 2.0.1 in /usr/lib/accessd/vendor;
# everything else comes from Debian's python3-* packages (README: "Debian package").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root}" && cd "${1:-$root}" && pwd)
python=${PYTHON:-python3}
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/accessd/__init__.py")
[ -n "$version" ] || { echo "build.sh: no __version__ in accessd/__init__.py" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}

build=$root/build/deb
stage=$build/accessd_${version}_all
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$build/wheels"

# the Python code, laid out as installed
lib=$stage/usr/lib/accessd
copy_tree() {  # SRC DEST: the .py files of a package tree, without byte-code
    (cd "$1" && find . -name __pycache__ -prune -o -name '*.py' -print) | while read -r f; do
        install -D -m 0644 "$1/$f" "$2/$f"
    done
}
copy_tree "$root/accessd" "$lib/accessd"
copy_tree "$root/protocols" "$lib/accessd/protocols"
copy_tree "$root/wiring" "$lib/accessd/wiring"

# pure-Python wheels Debian 12 lacks (gpiozero 2.0.1, paho-mqtt 2.x: Debian has 1.6),
# pinned by hash in vendor.txt (pip checks each against it)
"$python" -m pip download -q --no-deps --only-binary :all: --require-hashes -r "$here/vendor.txt" -d "$build/wheels"
"$python" - "$here/vendor.txt" "$build/wheels" "$lib/vendor" <<'PY'
import pathlib, re, sys, zipfile
pins = [line.split()[0] for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
for pin in pins:
    name, version = pin.split("==")
    stem = re.sub(r"[-.]+", "_", name)
    wheel, = pathlib.Path(sys.argv[2]).glob(f"{stem}-{version}-*.whl")
    with zipfile.ZipFile(wheel) as z:
        top = {n.split("/")[0] for n in z.namelist()}
        z.extractall(sys.argv[3], [n for n in z.namelist() if n.split("/")[0] in top])
PY
find "$lib/vendor" -name '*.pyc' -delete

# commands
mkdir -p "$stage/usr/bin"
for pair in accessd:accessd.main accessd-cli:accessd.cli; do
    name=${pair%%:*}
    sed -e "s/@NAME@/$name/" -e "s/@MODULE@/${pair#*:}/" "$here/launcher.in" > "$stage/usr/bin/$name"
    chmod 0755 "$stage/usr/bin/$name"
done

# units, users, directories, config, documentation
install -D -m 0644 "$root/systemd/accessd.service" "$stage/usr/lib/systemd/system/accessd.service"
install -D -m 0644 "$root/systemd/accessd.socket" "$stage/usr/lib/systemd/system/accessd.socket"
install -D -m 0644 "$root/systemd/sysusers.d/accessd.conf" "$stage/usr/lib/sysusers.d/accessd.conf"
install -D -m 0644 "$root/systemd/tmpfiles.d/accessd.conf" "$stage/usr/lib/tmpfiles.d/accessd.conf"
install -D -m 0644 "$root/examples/accessd.toml" "$stage/etc/accessd/accessd.toml"
doc=$stage/usr/share/doc/accessd
install -D -m 0644 "$root/README.md" "$doc/README.md"
for f in "$root"/examples/*.toml; do install -D -m 0644 "$f" "$doc/examples/$(basename "$f")"; done
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: accessd"
    echo
    echo "Files: *"
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' "$root/LICENSE"
    echo
    echo "Files: usr/lib/accessd/vendor/gpiozero/*"
    echo "Copyright: Ben Nuttall, Dave Jones and the gpiozero contributors"
    echo "License: BSD-3-Clause"
    sed 's/^$/./; s/^/ /' "$lib"/vendor/gpiozero-2.0.1.dist-info/LICENSE* 2>/dev/null || echo " see usr/lib/accessd/vendor/gpiozero-2.0.1.dist-info"
    echo
    echo "Files: usr/lib/accessd/vendor/paho/*"
    echo "Copyright: the Eclipse Paho contributors"
    echo "License: EPL-2.0 or EDL-1.0"
    echo " see usr/lib/accessd/vendor/paho_mqtt-*.dist-info/licenses"
} > "$doc/copyright"
changes=$(date -u -d "@$SOURCE_DATE_EPOCH" -R)
printf 'accessd (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- accessd authors <accessd@localhost>  %s\n' \
    "$version" "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'a source tree')" "$changes" \
    | gzip -9n > "$doc/changelog.Debian.gz"

# control files
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" "$here/control.in" > "$stage/DEBIAN/control"
echo /etc/accessd/accessd.toml > "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$stage/DEBIAN/$s"; done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) > "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 0755 {} +

deb=$out/accessd_${version}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
