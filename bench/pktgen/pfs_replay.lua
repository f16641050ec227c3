-- pfs_replay.lua - replay a pfs-gen trace against a pfs-relay appliance with
-- pktgen-dpdk and read the appliance's counters back (bench/pktgen/README.md).
--
--   pktgen -l 0-2 -n 4 -- -P -m "[1:2].0" -s 0:traces/chunks-1408.pcap \
--          -f bench/pktgen/pfs_replay.lua
--
-- Port 0 faces the appliance. The appliance's counters come from the command
-- in PFSCTL (default "pfsctl --json stats"; on the bench rig with
-- pfs-relayctl, the dataplane's DPDK telemetry:
-- PFSCTL="echo /pfs/stats | dpdk-telemetry.py"), read before and after each
-- step; the script prints, per rate step, what pktgen sent and what the
-- appliance relayed. tests/test_pktgen_lua.py runs it with a stand-in for
-- pktgen's API against a real dataplane.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local port = "0"
local seconds = tonumber(os.getenv("PFS_SECONDS") or "10")
local rates = { 10, 25, 50, 75, 100 }          -- percent of line rate
local pfsctl = os.getenv("PFSCTL") or "pfsctl --json stats"

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
  return { rx = field("rx_pkts"), relayed = field("fanout_chunks"), copies = field("fanout_tx"),
           tx = field("tx_chunks"), bad = field("rx_bad_crc"), drops = field("mbuf_drops") }
end

pktgen.screen("off")
pktgen.set(port, "count", 0)
printf("rate%%   sent/s      appliance rx/s  relayed/s   copies/s    bad-crc  mbuf-drops\n")
for _, rate in ipairs(rates) do
  pktgen.clr()
  pktgen.set(port, "rate", rate)
  local before = counters()
  pktgen.start(port)
  pktgen.delay(seconds * 1000)
  pktgen.stop(port)
  pktgen.delay(500)                             -- let the appliance drain
  local after = counters()
  local st = pktgen.portStats(port, "port")[tonumber(port)]
  if before and after then
    printf("%5d  %10.0f  %14.0f  %10.0f  %10.0f  %8d  %10d\n", rate, st.opackets / seconds,
           (after.rx - before.rx) / seconds, (after.relayed - before.relayed) / seconds,
           (after.copies - before.copies) / seconds, after.bad - before.bad,
           after.drops - before.drops)
  else
    printf("%5d  %10.0f  (no appliance counters: is %s reachable?)\n", rate,
           st.opackets / seconds, pfsctl)
  end
end
pktgen.quit()
