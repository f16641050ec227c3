-- Pktgen.lua - a stand-in for pktgen-dpdk's Lua API, for running
-- bench/pktgen/pfs_replay.lua where pktgen-dpdk is not installed
-- (tests/test_pktgen_lua.py). It implements the calls the script makes, with
-- the signatures pktgen-dpdk documents, logs each one on stdout as
-- "pktgen: NAME ARGS" for the test to check, and counts as "sent" what a
-- port at the set rate would send in the delays while started (1 Gbit/s of
-- 1478-byte frames at 100 %), which portStats reports as opackets.
local sent, rate, started = 0, 100, false
local line_pps = 1e9 / ((1478 + 20) * 8)

local function log(name, ...)
  local a = {}
  for i, v in ipairs({ ... }) do a[i] = tostring(v) end
  io.write("pktgen: ", name, " ", table.concat(a, " "), "\n")
  io.flush()
end

function printf(fmt, ...) io.write(string.format(fmt, ...)) io.flush() end

pktgen = {}
function pktgen.screen(s) log("screen", s) end
function pktgen.clr() sent = 0 log("clr") end
function pktgen.set(port, what, v)
  if what == "rate" then rate = v end
  log("set", port, what, v)
end
function pktgen.start(port) started = true log("start", port) end
function pktgen.stop(port) started = false log("stop", port) end
-- Real time passes, so the appliance's counters move meanwhile.
function pktgen.delay(ms)
  log("delay", ms)
  if started then sent = sent + ms / 1000 * line_pps * rate / 100 end
  os.execute(string.format("sleep %.3f", ms / 1000))
end
function pktgen.portStats(port, kind)
  log("portStats", port, kind)
  return { [tonumber(port)] = { opackets = math.floor(sent), ipackets = 0 } }
end
function pktgen.quit() log("quit") end
