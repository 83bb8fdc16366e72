-- set.lua from the peers' wrk scripts, paced to a fixed total rate (wrk2 is not available).
-- Env: WRK_SCRIPTS (the folder holding set.lua/common.lua), RATE (requests/s for the whole
-- run), THREADS (wrk -t, to split RATE). Each wrk thread keeps an absolute schedule of
-- send times RATE/THREADS apart; delay() holds each request until its slot, so the rate
-- stays fixed whatever the latency (a backlog of more than 100 ms is dropped, not burst).
dofile(os.getenv("WRK_SCRIPTS") .. "/set.lua")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = 1000 * tonumber(os.getenv("THREADS") or "1") / tonumber(os.getenv("RATE"))
local next_due = nil

function delay()
  local now = now_ms()
  if next_due == nil or next_due < now - 100 then next_due = now end
  next_due = next_due + interval
  local wait = next_due - now
  if wait < 1 then return 0 end
  return math.floor(wait)
end
