-- GET /api/user/balance as users taken round-robin from TOKENS (one JWT a line).
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local reqs, i = {}, 0
setup = bench_setup

function init(args)
  local tokens = bench_lines(os.getenv("TOKENS"))
  local offset = (thread_no or 1) * 7919
  for k = 1, #tokens do
    local token = tokens[(k + offset) % #tokens + 1]
    reqs[k] = wrk.format("GET", "/api/user/balance", {Authorization = "Bearer " .. token})
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

done = bench_done
