#!/usr/bin/env bash
# install-deps.sh - install every Debian 12 package pfs-relay builds, tests and demos with.
# Idempotent; run as root. Skips apt when everything is already present.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config clang llvm
  libisal-dev libssl-dev libcurl4-openssl-dev libjansson-dev
  libcriterion-dev libfuzzer-14-dev libclang-rt-14-dev
  libbpf-dev bpftool linux-libc-dev libdpdk-dev dpdk libconfig-dev
  tftpd-hpa tftp-hpa iproute2 procps psmisc python3 jq
  dpdk-dev libpcap-dev gnuplot-nox lua5.4 libsodium-dev lighttpd nginx atftp busybox libmicrohttpd-dev
  openssl tshark scdoc ethtool
  prometheus
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The packaged services of tftpd-hpa, lighttpd, nginx and prometheus (installed for
# promtool) would hold ports 69, 80 and 9090 on
# the host; the site harness runs its own servers inside a namespace.
if command -v systemctl >/dev/null 2>&1; then
  for unit in tftpd-hpa lighttpd nginx prometheus; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
