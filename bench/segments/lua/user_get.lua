-- GET /api/users/{id}/segments, id random among 1..USERS (all known: a read).
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local USERS = tonumber(os.getenv("USERS") or "100000")
local POOL = 20000
local reqs, i = {}, 0
setup = bench_setup

function init(args)
  math.randomseed(1000 + (thread_no or 1))
  for k = 1, POOL do
    reqs[k] = wrk.format("GET", "/api/users/" .. math.random(1, USERS) .. "/segments")
  end
end

function request()
  i = i % POOL + 1
  return reqs[i]
end

done = bench_done
