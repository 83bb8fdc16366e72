-- shared done() hook: one machine-readable line per run (latencies in microseconds).
-- A script loads it with dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua").
function bench_done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end

-- The numbers wrk's threads count from: setup() runs in the main state once per thread.
local next_thread = 0
function bench_setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
end

-- Lines of a file (tokens, ids) into a table; error if it is missing or empty.
function bench_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  assert(#out > 0, "no lines in " .. path)
  return out
end
