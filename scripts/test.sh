#!/usr/bin/env bash
# test.sh - install, build and run every test of pfs-relay: unit (Criterion,
# also under ASan and UBSan), fuzzing (libFuzzer, time-bounded), the dataplane
# on virtual devices, benchmark smokes and site integration (network namespaces).
# Run as root on Debian 12. Prints one "N passed, N failed" line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-15}     # per target; FUZZ_SECONDS=600 for a long run

passed=0; failed=0; failures=()
step() {        # step NAME CMD...: run one test step, record its verdict and time; its status
  local name=$1 t0=$SECONDS; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"; return 0; fi
  failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  return 1
}

# Every DPDK process leaves a directory under /var/run/dpdk (empty with
# --no-shconf): the ones our steps made (file prefixes pfs*) go at the end.
dpdk_run=/var/run/dpdk; [ "$(id -u)" -eq 0 ] || dpdk_run=${XDG_RUNTIME_DIR:-/tmp}/dpdk
dpdk_before=$(ls "$dpdk_run" 2>/dev/null | sort)
dpdk_tidy() {
  comm -13 <(echo "$dpdk_before") <(ls "$dpdk_run" 2>/dev/null | sort) | grep '^pfs' |
    while read -r d; do rm -rf "${dpdk_run:?}/$d"; done
}
trap dpdk_tidy EXIT

scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }
scripts/build.sh || { echo "build failed"; exit 1; }

step unit meson test -C build --suite unit --print-errorlogs

# The same unit tests built with AddressSanitizer and UBSan: any report fails.
# pfs-sim's sites at a tenth of their size (tests/test_sim.py): the full
# sizes run unsanitized in the step above.
sanitized() {
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
      >/dev/null || return 1
  fi
  ninja -C build-asan >/dev/null || return 1
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    PFS_SIM_SCALE=0.1 meson test -C build-asan --suite unit --print-errorlogs
}
step unit-sanitized sanitized

fuzz_targets=(fuzz_decode fuzz_manifest fuzz_dp_rx fuzz_tftp fuzz_http fuzz_engine fuzz_site)
fuzz_build() {  # every target, once: two runs at a time share build-fuzz below
  if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled >/dev/null || return 1
  fi
  ninja -C build-fuzz "${fuzz_targets[@]/#/tests/}"
}
fuzz() {        # fuzz TARGET [gen_corpus flag]: a bounded libFuzzer run from a seed corpus
  local target=$1; shift
  [ -x "build-fuzz/tests/$target" ] || { echo "build-fuzz/tests/$target: not built"; return 1; }
  local corpus; corpus=$(mktemp -d)
  build/tests/gen_corpus "$@" "$corpus" || { rm -rf "$corpus"; return 1; }
  "build-fuzz/tests/$target" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
    -max_len=2048 -artifact_prefix="$ROOT/build-fuzz/$target-" "$corpus" 2>&1 | tail -n 12
  local rc=${PIPESTATUS[0]}
  rm -rf "$corpus"
  return "$rc"
}
# What a device maker builds: the engine and pfs-peer without the
# appliance's dependencies (meson -Dappliance=disabled), linked against none
# of them, and their unit tests.
peer_only() {
  if [ ! -f build-peer/build.ninja ]; then
    meson setup build-peer -Dappliance=disabled -Dtests=enabled >/dev/null || return 1
  fi
  ninja -C build-peer >/dev/null || return 1
  local bin
  for bin in peer/pfs-peer trust/pfs-sign sim/pfs-sim; do
    if ldd "build-peer/$bin" | grep -E 'librte_|libbpf|libpcap|libconfig|libmicrohttpd'; then
      echo "build-peer/$bin links an appliance library"; return 1
    fi
  done
  [ ! -e build-peer/dataplane ] && [ ! -e build-peer/control ] ||
    { echo "the peer-only build built the appliance"; return 1; }
  meson test -C build-peer --suite unit --print-errorlogs
}
step peer-only peer_only

# Each fuzz run is one process bounded in time: two run at once, one per
# core, each still a step of its own (the second's output and verdict are
# taken when it ends). About a minute less than one after the other.
fuzz_bg() {     # fuzz_bg TARGET [flag]: fuzz in the background; fuzz_wait reports it
  fuzz_log=$(mktemp); fuzz "$@" >"$fuzz_log" 2>&1 & fuzz_pid=$!
}
fuzz_wait() {
  local rc=0
  wait "$fuzz_pid" || rc=$?
  cat "$fuzz_log"; rm -f "$fuzz_log"
  return "$rc"
}
if step fuzz-build fuzz_build; then
  fuzz_bg fuzz_manifest --manifest
  step fuzz-decode fuzz fuzz_decode
  step fuzz-manifest fuzz_wait
  fuzz_bg fuzz_tftp --tftp
  step fuzz-dp-rx fuzz fuzz_dp_rx --frames
  step fuzz-tftp fuzz_wait
  fuzz_bg fuzz_engine --engine
  step fuzz-http fuzz fuzz_http --http
  step fuzz-engine fuzz_wait
  step fuzz-site fuzz fuzz_site --site
fi

# The dataplane on virtual devices (no root needed): frames checked byte by byte.
step dataplane-frames timeout 300 python3 tests/test_dataplane_frames.py
# Benchmarks must not rot: a short run that asserts they ran, never a rate.
step bench-smoke timeout 300 python3 bench/relay_bench.py --smoke
step bench-smoke-gen timeout 300 python3 bench/relay_bench.py --smoke --source gen
# The pktgen-dpdk Lua script, under Lua with a stand-in for pktgen's API.
step pktgen-lua timeout 300 python3 tests/test_pktgen_lua.py
smoke_dir=$(mktemp -d)
step sim-smoke timeout 300 python3 bench/sim_bench.py --smoke --out "$smoke_dir"
step fsync-smoke timeout 60 python3 bench/fsync_contention.py --smoke

# Namespaces, veth, a bridge, tbf and tftpd-hpa: needs root.
if [ "$(id -u)" -eq 0 ]; then
  step site timeout 900 python3 tests/site/test_site.py
  step trust timeout 900 python3 tests/site/test_trust.py
  step faults timeout 900 python3 tests/site/test_faults.py
  step wan-delay timeout 300 python3 tests/site/test_wan_delay.py
  step tx-offload timeout 300 python3 tests/site/test_tx_offload.py
  step appliance timeout 900 python3 tests/site/test_appliance.py
  step serve timeout 300 python3 tests/site/test_serve.py
  step dissector timeout 300 python3 tests/test_dissector.py build
  step package timeout 900 python3 tests/test_package.py
  step rollout-smoke timeout 600 python3 bench/site_rollout.py --smoke --out "$smoke_dir"
  step rollout-smoke-rtt timeout 300 python3 bench/site_rollout.py --smoke --rtt 20 \
    --modes appliance-http,nginx --out "$smoke_dir/rtt"
  step faults-bench-smoke timeout 600 python3 bench/upstream_faults.py --smoke --out "$smoke_dir"
else
  root_steps=(site trust faults wan-delay tx-offload appliance serve dissector package rollout-smoke
              rollout-smoke-rtt faults-bench-smoke)
  echo "=== ${root_steps[*]}: need root (network namespaces)"
  failed=$((failed + ${#root_steps[@]})); failures+=("${root_steps[@]}")
fi
rm -rf "$smoke_dir"

echo
[ "$failed" -eq 0 ] || echo "failed steps: ${failures[*]}"
echo "tests: $passed passed, $failed failed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
[ "$failed" -eq 0 ]
