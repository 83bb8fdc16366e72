-- POST /api/users/{id}/segments {"add": [A], "remove": [B]}: id random among 1..USERS,
-- A and B two different slugs of SLUGS (comma-separated), so most requests change two
-- memberships and write history rows.
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local USERS = tonumber(os.getenv("USERS") or "100000")
local slugs = {}
local headers = {["Content-Type"] = "application/json"}
setup = bench_setup

function init(args)
  math.randomseed(2000 + (thread_no or 1))
  for slug in string.gmatch(os.getenv("SLUGS"), "[^,]+") do slugs[#slugs + 1] = slug end
end

function request()
  local a = math.random(1, #slugs)
  local b = (a + math.random(1, #slugs - 1) - 1) % #slugs + 1
  local body = string.format('{"add":["%s"],"remove":["%s"]}', slugs[a], slugs[b])
  return wrk.format("POST", "/api/users/" .. math.random(1, USERS) .. "/segments", headers,
                    body)
end

done = bench_done
