-- Pktgen.lua - a stand-in for pktgen-dpdk's Lua API, for running
-- bench/pktgen/pfs_replay.lua where pktgen-dpdk is not installed
-- (tests/test_pktgen_lua.py). It implements the calls the script makes, with
-- the signatures pktgen-dpdk documents, logs each one on stdout as
-- "pktgen: NAME ARGS" for the test to check, and behaves as pktgen does
-- where the script depends on it:
--   - the rate is a percentage of the link speed (PKTGEN_LINK_MBPS, default
--     1000, reported by linkState as "<UP-1000-FD>"), and a frame on the wire
--     is the trace's PKTGEN_FRAME_BYTES (1478) plus FCS, preamble and gap;
--   - time passes only in delay(), and portStats reports opackets as of
--     pktgen's last once-a-second refresh, whose phase the script cannot
--     know (here a quarter second into each second), not as of the call.
local link_mbps = tonumber(os.getenv("PKTGEN_LINK_MBPS") or "1000")
local frame_bytes = tonumber(os.getenv("PKTGEN_FRAME_BYTES") or "1478")
local line_pps = link_mbps * 1e6 / ((frame_bytes + 4 + 20) * 8)
local now_ms, sent, shown, rate, started = 0, 0, 0, 100, false
local PHASE_MS = 250

local function log(name, ...)
  local a = {}
  for i, v in ipairs({ ... }) do a[i] = tostring(v) end
  io.write("pktgen: ", name, " ", table.concat(a, " "), "\n")
  io.flush()
end

function printf(fmt, ...) io.write(string.format(fmt, ...)) io.flush() end

pktgen = {}
function pktgen.screen(s) log("screen", s) end
function pktgen.clr() sent, shown = 0, 0 log("clr") end
function pktgen.set(port, what, v)
  if what == "rate" then rate = v end
  log("set", port, what, v)
end
function pktgen.start(port) started = true log("start", port) end
function pktgen.stop(port) started = false log("stop", port) end
function pktgen.linkState(port)
  log("linkState", port)
  return { [tonumber(port)] = string.format("<UP-%d-FD>", link_mbps) }
end
-- Real time passes too, so the appliance's counters move meanwhile. Sending
-- and refreshes happen in steps of 1 ms of the stand-in's clock.
function pktgen.delay(ms)
  log("delay", ms)
  for _ = 1, ms do
    now_ms = now_ms + 1
    if started then sent = sent + line_pps * rate / 100 / 1000 end
    if now_ms % 1000 == PHASE_MS then shown = sent end
  end
  os.execute(string.format("sleep %.3f", ms / 1000))
end
function pktgen.portStats(port, kind)
  log("portStats", port, kind)
  return { [tonumber(port)] = { opackets = math.floor(shown + 0.5), ipackets = 0 } }
end
function pktgen.quit() log("quit") end
