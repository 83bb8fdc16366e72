-- GET / of the HTTP ceiling (a constant JSON), keep-alive.
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local req
function init(args) req = wrk.format("GET", "/") end
function request() return req end
done = bench_done
