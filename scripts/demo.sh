#!/usr/bin/env bash
# demo.sh - the main job: install, build, and roll firmware out to a simulated
# site of 16 devices with pfs-peer, then the traditional way, and compare.
# Run as root on Debian 12. Extra arguments go to scripts/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
exec python3 scripts/demo.py "$@"
