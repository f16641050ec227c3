#!/usr/bin/env bash
# package.sh - the Debian package: built with dpkg-buildpackage from a clean
# copy of this tree (the files git knows, as they are now), checked with
# lintian (no errors allowed), written to OUT_DIR (default build-deb/).
# Installs its build dependencies. Run as root on Debian 12:
#   scripts/package.sh [OUT_DIR]      then: apt install ./OUT_DIR/pfs-relay_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
scripts/install-deps.sh
apt_missing=()
for p in debhelper lintian fakeroot dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$p")
done
if [ "${#apt_missing[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pfs-relay" "$out"
git ls-files -z --cached --others --exclude-standard | \
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | \
  tar --null -T - -cf - | tar -xf - -C "$work/pfs-relay"
(cd "$work/pfs-relay" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
  dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
  tail -n 40 "$work/build.log"; echo "package.sh: dpkg-buildpackage failed" >&2; exit 1; }
deb=$(ls "$work"/pfs-relay_*_amd64.deb)
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb" | tee "$work/lintian.txt"
cp "$deb" "$out/"
echo "package.sh: $out/$(basename "$deb")"
