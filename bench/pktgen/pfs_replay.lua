-- pfs_replay.lua - replay a pfs-gen trace against a pfs-relay appliance with
-- pktgen-dpdk and read the appliance's counters back (bench/pktgen/README.md).
--
--   pktgen -l 0-2 -n 4 -- -P -m "[1:2].0" -s 0:traces/chunks-1408.pcap \
--          -f bench/pktgen/pfs_replay.lua
--
-- Port 0 faces the appliance. Each step sends at a rate in packets per
-- second (PFS_RATES, comma-separated; pktgen takes a percentage of the
-- port's link speed, computed here from its link state and the trace's frame
-- size, PFS_FRAME_BYTES, 1478 for 1408-byte chunks: a virtual port's nominal
-- 100 Gbit/s would make every percentage step above a few percent full
-- speed). The appliance's counters come from the command in PFSCTL (default
-- "pfsctl --json stats"; on the bench rig with pfs-relayctl, the dataplane's
-- DPDK telemetry: PFSCTL="echo /pfs/stats | dpdk-telemetry.py -f PREFIX"),
-- read before and after each step. Per step: what pktgen sent, what the
-- appliance received and relayed, the copies its port took (delivered) and
-- the frames it dropped (a full TX ring, no mbuf). pktgen refreshes its port
-- counters once a second, so they are read more than a second after the
-- stop. tests/test_pktgen_lua.py runs it with a stand-in for pktgen's API
-- against a real dataplane.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local port = "0"
local seconds = tonumber(os.getenv("PFS_SECONDS") or "10")
local frame_bytes = tonumber(os.getenv("PFS_FRAME_BYTES") or "1478")
local pfsctl = os.getenv("PFSCTL") or "pfsctl --json stats"
local refresh_ms = 1500         -- past pktgen's next once-a-second refresh

local rates = {}                 -- packets per second
for r in string.gmatch(os.getenv("PFS_RATES") or "100000,250000,500000,1000000,2000000",
                       "[^,]+") do
  rates[#rates + 1] = tonumber(r)
end

-- The port's speed in Mbit/s from pktgen's link state ("<UP-10000-FD>").
local function link_mbps()
  local st = pktgen.linkState(port)[tonumber(port)] or ""
  return tonumber(string.match(st, "UP%-(%d+)")) or 0
end

-- The dataplane's counters out of the JSON PFSCTL prints (no JSON library in
-- pktgen's Lua): pfsctl's "dataplane" object, or the whole text (DPDK
-- telemetry's /pfs/stats). nil when the command printed no counters.
local function counters()
  local h = io.popen(pfsctl)
  if not h then return nil end
  local s = h:read("*a")
  h:close()
  s = string.match(s, '"dataplane"%s*:%s*(%b{})') or s       -- pfsctl has control's too
  if not string.match(s, '"rx_pkts"%s*:%s*%d') then return nil end
  local function field(k) return tonumber(string.match(s, '"' .. k .. '"%s*:%s*(%d+)') or "0") end
  return { rx = field("rx_pkts"), relayed = field("fanout_chunks"), delivered = field("tx_pkts"),
           dropped = field("tx_drops") + field("mbuf_drops"), bad = field("rx_bad_crc") }
end

local mbps = link_mbps()
if mbps == 0 then
  printf("port %s: link down or speed unknown (%s)\n", port,
         tostring(pktgen.linkState(port)[tonumber(port)]))
  pktgen.quit()
  return
end
pktgen.screen("off")
pktgen.set(port, "count", 0)
-- A wire frame: the trace's bytes, the FCS, preamble and inter-frame gap.
local wire_bits = (frame_bytes + 4 + 20) * 8
printf("rate-pps  sent/s      appliance-rx/s  relayed/s   delivered/s  dropped/s  bad-crc\n")
for _, pps in ipairs(rates) do
  pktgen.clr()
  pktgen.set(port, "rate", pps * wire_bits / (mbps * 1e6) * 100)
  local before = counters()
  pktgen.start(port)
  pktgen.delay(seconds * 1000)
  pktgen.stop(port)
  pktgen.delay(refresh_ms)                      -- pktgen's counters refreshed, the appliance drained
  local after = counters()
  local st = pktgen.portStats(port, "port")[tonumber(port)]
  if before and after then
    printf("%8d  %10.0f  %14.0f  %10.0f  %11.0f  %9.0f  %7d\n", pps, st.opackets / seconds,
           (after.rx - before.rx) / seconds, (after.relayed - before.relayed) / seconds,
           (after.delivered - before.delivered) / seconds,
           (after.dropped - before.dropped) / seconds, after.bad - before.bad)
  else
    printf("%8d  %10.0f  (no appliance counters: is %s reachable?)\n", pps,
           st.opackets / seconds, pfsctl)
  end
end
pktgen.quit()
