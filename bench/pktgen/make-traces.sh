#!/usr/bin/env bash
# make-traces.sh - the pcap traces pktgen-dpdk replays against an appliance
# (bench/pktgen/README.md). Written by pfs-gen into bench/pktgen/traces/.
#   make-traces.sh [--from IP] [--to IP] [--model M] [--path P]
# The defaults match pfs-relayctl's; for a real appliance give its address
# (--to) and the parent's (--from) that its hierarchy has.
set -euo pipefail
cd "$(dirname "$0")"
GEN=../../build/bench/pfs-gen
[ -x "$GEN" ] || { echo "make-traces: build first (scripts/build.sh)" >&2; exit 1; }
mkdir -p traces
for chunk in 512 1408 8192; do
  "$GEN" --out "traces/chunks-$chunk.pcap" --chunk-size "$chunk" \
         --file-size $((chunk * 4096)) --rate 1000000 "$@"
done
