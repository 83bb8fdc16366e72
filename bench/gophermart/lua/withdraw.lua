-- POST /api/user/balance/withdraw {"order": <new Luhn-valid number>, "sum": 0.01} as users
-- taken round-robin from TOKENS. Numbers are RUN (digits), the thread, a counter and the
-- Luhn check digit, so no number repeats within or across runs of one bench.
dofile(os.getenv("BENCH_COMMON_LUA") .. "/result.lua")
local tokens, i, n = nil, 0, 0
local run = os.getenv("RUN") or "1"
setup = bench_setup

local function luhn_digit(s)
  local sum, double = 0, true
  for k = #s, 1, -1 do
    local d = s:byte(k) - 48
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return (10 - sum % 10) % 10
end

function init(args)
  tokens = bench_lines(os.getenv("TOKENS"))
  i = (thread_no or 1) * 7919
end

function request()
  i = i % #tokens + 1
  n = n + 1
  local payload = string.format("%s%02d%09d", run, thread_no or 1, n)
  local body = string.format('{"order":"%s%d","sum":0.01}', payload, luhn_digit(payload))
  return wrk.format("POST", "/api/user/balance/withdraw",
                    {Authorization = "Bearer " .. tokens[i],
                     ["Content-Type"] = "application/json"}, body)
end

done = bench_done
