-- POST /api/v1/user/{id}/amount/ {"type", "amount"}: id random in USER_MIN..USER_MAX, half
-- replenishments and half write-offs of 1..1000 (some write-offs are cancelled).
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local LOW = tonumber(os.getenv("USER_MIN") or "1")
local HIGH = tonumber(os.getenv("USER_MAX") or "10000")
local POOL = 20000
local reqs, i = {}, 0
local headers = {["Content-Type"] = "application/json"}
setup = bench_setup

function init(args)
  math.randomseed(3000 + (thread_no or 1) + tonumber(os.getenv("SEED") or "0"))
  for k = 1, POOL do
    local kind = math.random(2) == 1 and "replenishment" or "write-off"
    local body = string.format('{"type":"%s","amount":%d}', kind, math.random(1, 1000))
    reqs[k] = wrk.format("POST", "/api/v1/user/" .. math.random(LOW, HIGH) .. "/amount/",
                         headers, body)
  end
end

function request()
  i = i % POOL + 1
  return reqs[i]
end

done = bench_done
