#!/usr/bin/env bash
# build.sh - configure (once) and build pfs-relay into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized
ninja -C build
