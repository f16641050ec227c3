-- pfs.lua - a Wireshark dissector for PFS, peer firmware sharing, on UDP 4051
-- (docs/protocol.md section 3; docs/wireshark.md says how to use it).
--
--   tshark -X lua_script:pfs.lua -r capture.pcap -Y pfs
--   cp pfs.lua ~/.local/lib/wireshark/plugins/      # always loaded
--
-- Every message of the protocol, every field by name (pfs.type, pfs.sender,
-- pfs.hier, pfs.claim.strength, pfs.data.index, pfs.ack.ranges, the status
-- block, the manifest transfer, the site-key tag). The DATA payload's
-- CRC32C is checked (expert info on a mismatch). A hierarchy key is shown
-- with the model and path that a CLAIM, ROOT or JOIN of the capture named.
-- Malformed datagrams are flagged with the codec's own error names
-- (engine/pfs_codec.c), checked in the codec's order, so Wireshark and the
-- nodes call the same datagram the same thing (tests/test_dissector.py).

local pfs = Proto("pfs", "Peer Firmware Sharing")

local HDR_LEN, MODEL_MAX, FILEPATH_MAX = 20, 32, 255
local PATH_MAX, ACK_RANGES_MAX, AUTH_MAX = 32, 16, 64
local CHUNK_MAX, MPIECE_LEN, MANIFEST_MAX = 60000, 1024, 16 * 1024 * 1024
local TAG_LEN = 25
local CLASS_SHIFT, CONFIRMED = 28, 0x08000000

local TYPES = { "CLAIM", "ROOT", "JOIN", "ACCEPT", "REDIRECT", "REFUSE", "HEARTBEAT",
                "DATA", "ACK", "LEAVE", "MREQ", "MANIFEST", "RELAY" }
local TYPE_MAX = #TYPES
local REASONS = { [0] = "none", "loop", "not a member", "failed", "shutdown", "reparent",
                  "root gone", "root failed" }
local REASON_MAX = 7

-- The codec's names for what is wrong (pfs_codec_strerror).
local E = {
	short = "truncated header", magic = "bad magic", version = "unsupported version",
	type = "unknown message type", flags = "bad header flags", length = "length mismatch",
	body = "bad body size", field = "field out of range", crc = "chunk CRC32C mismatch",
}

local type_vals = {}
for i, n in ipairs(TYPES) do type_vals[i] = n end
local reason_vals = {}
for i = 0, REASON_MAX do reason_vals[i] = REASONS[i] end

local f = pfs.fields
f.magic       = ProtoField.uint16("pfs.magic", "Magic", base.HEX)
f.version     = ProtoField.uint8("pfs.version", "Version")
f.type        = ProtoField.uint8("pfs.type", "Type", base.DEC, type_vals)
f.flags       = ProtoField.uint8("pfs.flags", "Flags", base.HEX)
f.flag_auth   = ProtoField.bool("pfs.flags.auth", "AUTH (a site-key tag follows)", 8, nil, 0x01)
f.auth_len    = ProtoField.uint8("pfs.auth_len", "Tag length")
f.body_len    = ProtoField.uint16("pfs.body_len", "Body length")
f.sender      = ProtoField.uint32("pfs.sender", "Sender node id", base.HEX)
f.hier        = ProtoField.uint64("pfs.hier", "Hierarchy key", base.HEX)
f.hier_model  = ProtoField.string("pfs.hier.model", "Hierarchy model (seen in this capture)")
f.hier_path   = ProtoField.string("pfs.hier.path", "Hierarchy file (seen in this capture)")
f.model_len   = ProtoField.uint8("pfs.model_len", "Model length")
f.path_len    = ProtoField.uint16("pfs.path_len", "Path length")
f.model       = ProtoField.string("pfs.model", "Model")
f.path        = ProtoField.string("pfs.path", "File path")
f.class       = ProtoField.uint8("pfs.class", "Priority class")
f.confirmed   = ProtoField.bool("pfs.confirmed", "Confirmed root")
f.claim_str   = ProtoField.uint32("pfs.claim.strength", "Strength", base.HEX)
f.claim_ad    = ProtoField.uint8("pfs.claim.ad", "Claim number")
f.root_str    = ProtoField.uint32("pfs.root.strength", "Strength", base.HEX)
f.root_nodes  = ProtoField.uint32("pfs.root.tree_nodes", "Nodes in the tree")
f.root_flags  = ProtoField.uint8("pfs.root.flags", "Flags", base.HEX)
f.root_failed = ProtoField.bool("pfs.root.failed", "FAILED (the server could not give it)",
                                8, nil, 0x01)
f.join_sub    = ProtoField.uint32("pfs.join.subtree", "Subtree nodes")
f.join_hops   = ProtoField.uint8("pfs.join.hops", "Redirect hops")
f.slot        = ProtoField.uint8("pfs.accept.slot", "Child slot")
f.st          = ProtoField.none("pfs.status", "Status block")
f.st_mflags   = ProtoField.uint8("pfs.status.mflags", "Manifest flags", base.HEX)
f.st_final    = ProtoField.bool("pfs.status.final", "FINAL", 8, nil, 0x01)
f.st_failed   = ProtoField.bool("pfs.status.failed", "FAILED", 8, nil, 0x02)
f.st_signed   = ProtoField.bool("pfs.status.signed", "SIGNED", 8, nil, 0x04)
f.st_notfound = ProtoField.bool("pfs.status.not_found", "NOT_FOUND", 8, nil, 0x08)
f.st_npath    = ProtoField.uint8("pfs.status.npath", "Ancestors")
f.st_chunk    = ProtoField.uint32("pfs.status.chunk_size", "Chunk size")
f.st_size     = ProtoField.uint64("pfs.status.size", "File size")
f.st_sha      = ProtoField.bytes("pfs.status.sha256", "SHA-256")
f.st_prefix   = ProtoField.uint32("pfs.status.parent_prefix", "Parent's prefix (chunks)")
f.st_manlen   = ProtoField.uint32("pfs.status.manifest_len", "Signed manifest length")
f.st_path     = ProtoField.uint32("pfs.status.path", "Ancestor", base.HEX)
f.rd_id       = ProtoField.uint32("pfs.redirect.target_id", "Target node id", base.HEX)
f.rd_ip       = ProtoField.ipv4("pfs.redirect.target_ip", "Target address")
f.rd_port     = ProtoField.uint16("pfs.redirect.target_port", "Target port")
f.reason      = ProtoField.uint8("pfs.reason", "Reason", base.DEC, reason_vals)
f.answers     = ProtoField.uint8("pfs.refuse.answers", "Answers", base.DEC,
                                 { [0] = "unsaid", [3] = "JOIN", [9] = "ACK" })
f.d_index     = ProtoField.uint32("pfs.data.index", "Chunk index")
f.d_crc       = ProtoField.uint32("pfs.data.crc32c", "CRC32C", base.HEX)
f.d_crc_ok    = ProtoField.bool("pfs.data.crc32c.ok", "CRC32C good")
f.d_len       = ProtoField.uint16("pfs.data.len", "Payload length")
f.d_payload   = ProtoField.bytes("pfs.data.payload", "Payload")
f.a_cum       = ProtoField.uint32("pfs.ack.cum", "Cumulative (all below held)")
f.a_highest   = ProtoField.uint32("pfs.ack.highest", "Highest + 1")
f.a_limit     = ProtoField.uint32("pfs.ack.limit", "Window limit")
f.a_sub       = ProtoField.uint32("pfs.ack.subtree", "Subtree nodes")
f.a_flags     = ProtoField.uint8("pfs.ack.flags", "Flags", base.HEX)
f.a_stall     = ProtoField.bool("pfs.ack.stall", "STALL", 8, nil, 0x01)
f.a_complete  = ProtoField.bool("pfs.ack.complete", "COMPLETE", 8, nil, 0x02)
f.a_more      = ProtoField.bool("pfs.ack.more", "MORE", 8, nil, 0x04)
f.a_nranges   = ProtoField.uint8("pfs.ack.nranges", "Missing ranges")
f.a_ranges    = ProtoField.string("pfs.ack.ranges", "Missing (start+count)")
f.a_start     = ProtoField.uint32("pfs.ack.range.start", "Start")
f.a_count     = ProtoField.uint32("pfs.ack.range.count", "Count")
f.mr_offset   = ProtoField.uint32("pfs.mreq.offset", "Offset")
f.mr_total    = ProtoField.uint32("pfs.mreq.total", "Manifest length")
f.mp_total    = ProtoField.uint32("pfs.manifest.total", "Manifest length")
f.mp_offset   = ProtoField.uint32("pfs.manifest.offset", "Offset")
f.mp_bytes    = ProtoField.bytes("pfs.manifest.bytes", "Manifest bytes")
f.rl_str      = ProtoField.uint32("pfs.relay.strength", "Strength", base.HEX)
f.rl_hold     = ProtoField.uint16("pfs.relay.hold_ms", "Hold (ms)")
f.rl_flags    = ProtoField.uint8("pfs.relay.flags", "Flags", base.HEX)
f.tag         = ProtoField.bytes("pfs.tag", "Authentication tag")
f.tag_key     = ProtoField.uint8("pfs.tag.key_id", "Site key id")
f.tag_seq     = ProtoField.uint64("pfs.tag.seq", "Sequence")
f.tag_mac     = ProtoField.bytes("pfs.tag.mac", "HMAC-SHA-256/128")
f.err         = ProtoField.string("pfs.error", "Malformed")

local ex_malformed = ProtoExpert.new("pfs.malformed", "Malformed PFS datagram",
                                     expert.group.MALFORMED, expert.severity.ERROR)
local ex_crc = ProtoExpert.new("pfs.crc32c.bad", "DATA payload does not match its CRC32C",
                               expert.group.CHECKSUM, expert.severity.ERROR)
pfs.experts = { ex_malformed, ex_crc }

-- CRC32C (Castagnoli), as the codec's (ISA-L); a checksum, not cryptography.
local CRC = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if bit32.band(c, 1) == 1 then
			c = bit32.bxor(bit32.rshift(c, 1), 0x82F63B78)
		else
			c = bit32.rshift(c, 1)
		end
	end
	CRC[i] = c
end

local function crc32c(bytes)
	local crc = 0xFFFFFFFF
	for i = 0, bytes:len() - 1 do
		crc = bit32.bxor(CRC[bit32.band(bit32.bxor(crc, bytes:get_index(i)), 0xFF)],
		                 bit32.rshift(crc, 8))
	end
	return bit32.bxor(crc, 0xFFFFFFFF)
end

-- pfs_model_valid and pfs_filepath_valid (engine/pfs_codec.c).
local function model_valid(s)
	return #s >= 1 and #s <= MODEL_MAX and s:find("^[A-Za-z0-9._-]+$") ~= nil
end

local function path_valid(s)
	if #s == 0 or #s > FILEPATH_MAX then return false end
	for i = 1, #s do
		local b = s:byte(i)
		if b < 0x21 or b > 0x7e or b == 0x5c then return false end
		if b == 0x2e and s:byte(i + 1) == 0x2e and (i == 1 or s:byte(i - 1) == 0x2f) and
		   (i + 2 > #s or s:byte(i + 2) == 0x2f) then
			return false
		end
	end
	return s:find("[^/]") ~= nil
end

-- Hierarchy key (hex) -> model and path, as CLAIM, ROOT and JOIN named them.
local seen = {}

-- A cursor over the body: reads advance, every field goes into the tree.
local function cursor(tvb, off, len, tree)
	return { tvb = tvb, off = off, left = len, tree = tree }
end

local function take(c, n, field, tree)
	local r = c.tvb(c.off, n)
	c.off = c.off + n
	c.left = c.left - n
	if field then (tree or c.tree):add(field, r) end
	return r
end

local function strength(tree, r)
	local v = r:uint()
	tree:add(f.class, r, bit32.rshift(v, CLASS_SHIFT)):set_generated()
	tree:add(f.confirmed, r, bit32.band(v, CONFIRMED) ~= 0):set_generated()
	return v
end

local function strings(c, mlen, plen)
	if c.left ~= mlen + plen then return nil, "body" end
	local model = take(c, mlen, f.model):string()
	local path = take(c, plen, f.path):string()
	if not model_valid(model) or not path_valid(path) then return nil, "field" end
	return model, path
end

local function status(c, tree)
	if c.left < 56 then return "body" end
	local t = tree:add(f.st, c.tvb(c.off, c.left))
	local mr = take(c, 1, f.st_mflags, t)
	local mflags = mr:uint()
	t:add(f.st_final, mr); t:add(f.st_failed, mr); t:add(f.st_signed, mr)
	t:add(f.st_notfound, mr)
	local npath = take(c, 1, f.st_npath, t):uint()
	take(c, 2)
	local chunk = take(c, 4, f.st_chunk, t):uint()
	local size = take(c, 8, f.st_size, t):uint64()
	take(c, 32, f.st_sha, t)
	take(c, 4, f.st_prefix, t)
	local manlen = take(c, 4, f.st_manlen, t):uint()
	if npath > PATH_MAX then return "field" end
	if c.left ~= npath * 4 then return "body" end
	local zero = false
	for _ = 1, npath do
		if take(c, 4, f.st_path, t):uint() == 0 then zero = true end
	end
	if bit32.band(mflags, bit32.bnot(0x0f)) ~= 0 or npath == 0 or chunk == 0 or
	   chunk > CHUNK_MAX then
		return "field"
	end
	if bit32.band(mflags, 0x01) ~= 0 then   -- FINAL: the chunk count fits 32 bits
		local n = size / UInt64(chunk)
		if size % UInt64(chunk) ~= UInt64(0) then n = n + 1 end
		if n > UInt64(0xFFFFFFFF) then return "field" end
	end
	if zero then return "field" end
	if bit32.band(mflags, 0x04) == 0 then     -- not SIGNED: no manifest length
		if manlen ~= 0 then return "field" end
		return nil
	end
	if bit32.band(mflags, 0x01) == 0 or manlen == 0 or manlen > MANIFEST_MAX then
		return "field"
	end
	return nil
end

local function ack(c, tree)
	if c.left < 20 then return "body" end
	local cum = take(c, 4, f.a_cum):uint()
	local highest = take(c, 4, f.a_highest):uint()
	local limit = take(c, 4, f.a_limit):uint()
	local sub = take(c, 4, f.a_sub):uint()
	local fr = take(c, 1, f.a_flags)
	tree:add(f.a_stall, fr); tree:add(f.a_complete, fr); tree:add(f.a_more, fr)
	local flags = fr:uint()
	local n = take(c, 1, f.a_nranges):uint()
	take(c, 2)
	if n > ACK_RANGES_MAX then return "field" end
	if c.left ~= n * 8 then return "body" end
	if bit32.band(flags, bit32.bnot(0x07)) ~= 0 or cum > highest or limit < cum or
	   sub == 0 then
		return "field"
	end
	local list, prev_end, bad = {}, cum, false
	for i = 1, n do
		local rt = tree:add(c.tvb(c.off, 8), "Range " .. i)
		local s = take(c, 4, f.a_start, rt):uint()
		local cnt = take(c, 4, f.a_count, rt):uint()
		list[#list + 1] = s .. "+" .. cnt
		if not bad and (cnt == 0 or s < prev_end or s > highest or highest - s < cnt or
		                (i > 1 and s == prev_end)) then
			bad = true
		end
		prev_end = s + cnt
	end
	tree:add(f.a_ranges, table.concat(list, ";")):set_generated()
	return bad and "field" or nil
end

-- The body of each type, as decode_body: nil, or the error's key.
local function body(t, c, tree, hier_hex, pinfo)
	if t == 1 or t == 2 or t == 3 then
		if c.left < (t == 2 and 12 or 8) then return "body" end
		local v, nodes, flags, hops, sub
		if t == 1 then
			v = strength(tree, take(c, 4, f.claim_str))
			take(c, 1, f.claim_ad)
		elseif t == 2 then
			v = strength(tree, take(c, 4, f.root_str))
			nodes = take(c, 4, f.root_nodes):uint()
			local fr = take(c, 1, f.root_flags)
			tree:add(f.root_failed, fr)
			flags = fr:uint()
		else
			sub = take(c, 4, f.join_sub):uint()
			hops = take(c, 1, f.join_hops):uint()
		end
		local mlen = take(c, 1, f.model_len):uint()
		local plen = take(c, 2, f.path_len):uint()
		local model, path = strings(c, mlen, plen)
		if not model then return path end
		if (t == 1 and v == 0) or (t == 2 and (bit32.band(flags, 0xfe) ~= 0 or v == 0 or
		                                       nodes == 0)) or (t == 3 and sub == 0) then
			return "field"
		end
		seen[hier_hex] = { model, path }
		pinfo.cols.info:append(" " .. model .. " " .. path)
	elseif t == 4 or t == 7 then
		if t == 4 then
			if c.left < 4 then return "body" end
			take(c, 1, f.slot)
			take(c, 3)
		end
		return status(c, tree)
	elseif t == 5 then
		if c.left ~= 12 then return "body" end
		local id = take(c, 4, f.rd_id):uint()
		local ip = take(c, 4, f.rd_ip):uint()
		local port = take(c, 2, f.rd_port):uint()
		take(c, 2)
		if id == 0 or ip == 0 or port == 0 then return "field" end
	elseif t == 6 or t == 10 then
		if c.left ~= 4 then return "body" end
		local r = take(c, 1, f.reason):uint()
		local a = 0
		if t == 6 then a = take(c, 1, f.answers):uint() else take(c, 1) end
		take(c, 2)
		if r > REASON_MAX then return "field" end
		if a ~= 0 and a ~= 3 and a ~= 9 then return "field" end
	elseif t == 8 then
		local idx = take(c, 4, f.d_index):uint()
		local cr = take(c, 4, f.d_crc)
		local n = c.left
		local pr = take(c, n, f.d_payload)
		tree:add(f.d_len, n):set_generated()
		local ok = crc32c(pr:bytes()) == cr:uint()
		local item = tree:add(f.d_crc_ok, ok):set_generated()
		pinfo.cols.info:append(" #" .. idx)
		if not ok then
			item:add_proto_expert_info(ex_crc)
			return "crc"
		end
	elseif t == 9 then
		return ack(c, tree)
	elseif t == 11 then
		if c.left ~= 8 then return "body" end
		local off = take(c, 4, f.mr_offset):uint()
		local total = take(c, 4, f.mr_total):uint()
		if total == 0 or total > MANIFEST_MAX or off >= total or off % MPIECE_LEN ~= 0 then
			return "field"
		end
	elseif t == 12 then
		if c.left < 9 or c.left > 8 + MPIECE_LEN then return "body" end
		local total = take(c, 4, f.mp_total):uint()
		local off = take(c, 4, f.mp_offset):uint()
		local n = c.left
		take(c, n, f.mp_bytes)
		local want = total - off < MPIECE_LEN and total - off or MPIECE_LEN
		if not (total ~= 0 and total <= MANIFEST_MAX and off < total and
		        off % MPIECE_LEN == 0 and n == want) then
			return "field"
		end
	elseif t == 13 then
		if c.left < 8 then return "body" end
		local v = strength(tree, take(c, 4, f.rl_str))
		local hold = take(c, 2, f.rl_hold):uint()
		local mlen = take(c, 1, f.model_len):uint()
		local flags = take(c, 1, f.rl_flags):uint()
		if c.left ~= mlen then return "body" end
		local model = take(c, mlen, f.model):string()
		if flags ~= 0 or hier_hex ~= "ffffffffffffffff" or bit32.rshift(v, CLASS_SHIFT) == 0 or
		   bit32.band(v, CONFIRMED) == 0 or hold == 0 or mlen > MODEL_MAX or
		   (mlen > 0 and not model_valid(model)) then
			return "field"
		end
		pinfo.cols.info:append(" " .. (mlen > 0 and model or "every model"))
	end
	return nil
end

local function tag(tvb, off, n, tree)
	local t = tree:add(f.tag, tvb(off, n))
	if n == TAG_LEN then
		t:add(f.tag_key, tvb(off, 1))
		t:add(f.tag_seq, tvb(off + 1, 8))
		t:add(f.tag_mac, tvb(off + 9, 16))
	end
end

function pfs.dissector(tvb, pinfo, tree)
	local len = tvb:len()
	pinfo.cols.protocol = "PFS"
	local root = tree:add(pfs, tvb())

	local function malformed(key)
		root:add(f.err, E[key]):set_generated()
		root:add_proto_expert_info(ex_malformed, "Malformed: " .. E[key])
		pinfo.cols.info:append(" [Malformed: " .. E[key] .. "]")
		return len
	end

	if len < HDR_LEN then
		pinfo.cols.info = "PFS"
		return malformed("short")
	end
	local magic = tvb(0, 2):uint()
	local version = tvb(2, 1):uint()
	local t = tvb(3, 1):uint()
	local flags = tvb(4, 1):uint()
	local auth_len = tvb(5, 1):uint()
	local body_len = tvb(6, 2):uint()
	root:add(f.magic, tvb(0, 2))
	root:add(f.version, tvb(2, 1))
	root:add(f.type, tvb(3, 1))
	local fl = root:add(f.flags, tvb(4, 1))
	fl:add(f.flag_auth, tvb(4, 1))
	root:add(f.auth_len, tvb(5, 1))
	root:add(f.body_len, tvb(6, 2))
	root:add(f.sender, tvb(8, 4))
	local hi = root:add(f.hier, tvb(12, 8))
	local hier_hex = tostring(tvb(12, 8):uint64():tohex()):lower()
	pinfo.cols.info = (TYPES[t] or ("type " .. t)) .. " hier " .. hier_hex

	if magic ~= 0x5046 then return malformed("magic") end
	if version ~= 1 then return malformed("version") end
	if t == 0 or t > TYPE_MAX then return malformed("type") end
	if bit32.band(flags, bit32.bnot(0x01)) ~= 0 or
	   (bit32.band(flags, 0x01) ~= 0) ~= (auth_len ~= 0) or auth_len > AUTH_MAX then
		return malformed("flags")
	end
	if body_len + auth_len ~= len - HDR_LEN then return malformed("length") end
	if tvb(8, 4):uint() == 0 or hier_hex == "0000000000000000" then
		return malformed("field")
	end
	if t == 8 then
		if body_len < 9 then return malformed("body") end
		if body_len - 8 > CHUNK_MAX then return malformed("field") end
	end
	local bt = root:add(tvb(HDR_LEN, body_len), TYPES[t] .. " body")
	local err = body(t, cursor(tvb, HDR_LEN, body_len, bt), bt, hier_hex, pinfo)
	if auth_len > 0 then tag(tvb, HDR_LEN + body_len, auth_len, root) end
	local known = seen[hier_hex]
	if known then
		hi:add(f.hier_model, known[1]):set_generated()
		hi:add(f.hier_path, known[2]):set_generated()
	end
	if err then return malformed(err) end
	return len
end

DissectorTable.get("udp.port"):add(4051, pfs)
