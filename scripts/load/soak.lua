-- Mixed traffic for scripts/soak.sh. Run with one connection per thread
-- (-t N -c N), so each thread is one signed-in device and knows which
-- request every response answers. USERS names a file written by
-- soak_users.py: one line per thread, "email access_token refresh_token".
--
-- Each request is, at random:
--   55 % GET /auth/me with the thread's access token        -> 200
--   20 % POST /auth/refresh, chained (the thread keeps the
--        rotated pair)                                       -> 200
--   12 % POST /auth/login, the thread's user, right password,
--        from a new client IP                                -> 200
--    8 % POST /auth/register, a new email, a new client IP   -> 201
--    5 % POST /auth/login, wrong password for an unknown
--        email of the thread, from the thread's own IP       -> 401, then 429
--        (progressive delay, per-IP limit): intended
-- Any other answer is unexpected and counted as such; soak.sh fails on it.
-- Client IPs reach the server through X-Forwarded-For (the server trusts
-- 127.0.0.1 as a proxy), so the rate limits stay on and see many clients.

local PASSWORD = "Zq8#vT2!mW-horse"
local RUN = os.getenv("RUN") or "0"

-- setup/done environment -------------------------------------------------
local threads = {}
local users = {}
for line in io.lines(os.getenv("USERS")) do
  local email, access, refresh = line:match("^(%S+) (%S+) (%S+)$")
  users[#users + 1] = { email, access, refresh }
end

function setup(thread)
  local n = #threads + 1
  local user = users[n]
  if not user then
    error("USERS has " .. #users .. " lines, fewer than the threads")
  end
  thread:set("tid", n)
  thread:set("email", user[1])
  thread:set("access", user[2])
  thread:set("refresh", user[3])
  threads[n] = thread
end

-- thread environment ------------------------------------------------------
counts = {}
local kind = nil
local seq = 0

function init(args)
  math.randomseed(tid * 7919)
end

-- A client IP not used before by this run: 10.(100+tid).x.y.
local function fresh_ip()
  seq = seq + 1
  return string.format("10.%d.%d.%d", 100 + tid, math.floor(seq / 256) % 256, seq % 256)
end

local function json_post(path, ip, body)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = ip,
  }, body)
end

function request()
  local r = math.random(100)
  local own_ip = string.format("10.1.%d.1", tid)
  if r <= 55 then
    kind = "me"
    return wrk.format("GET", "/auth/me", {
      ["Authorization"] = "Bearer " .. access,
      ["X-Forwarded-For"] = own_ip,
    })
  elseif r <= 75 then
    kind = "refresh"
    return json_post("/auth/refresh", own_ip, '{"refresh_token":"' .. refresh .. '"}')
  elseif r <= 87 then
    kind = "login"
    return json_post("/auth/login", fresh_ip(),
      '{"email":"' .. email .. '","password":"' .. PASSWORD .. '"}')
  elseif r <= 95 then
    kind = "register"
    seq = seq + 1
    return json_post("/auth/register", fresh_ip(), string.format(
      '{"email":"soak-%s-%d-%d@example.com","password":"%s"}', RUN, tid, seq, PASSWORD))
  else
    kind = "wrong_password"
    return json_post("/auth/login", own_ip, string.format(
      '{"email":"nobody-%s-%d@example.com","password":"wrong-password-1"}', RUN, tid))
  end
end

local expected = {
  me = { [200] = true },
  refresh = { [200] = true },
  login = { [200] = true },
  register = { [201] = true },
  wrong_password = { [401] = true, [429] = true },
}

function response(status, headers, body)
  local key = kind .. " " .. status
  counts[key] = (counts[key] or 0) + 1
  if not expected[kind][status] then
    counts["unexpected"] = (counts["unexpected"] or 0) + 1
    if not counts["first_unexpected"] then
      counts["first_unexpected"] = key .. " " .. body:sub(1, 200)
    end
  end
  if kind == "refresh" and status == 200 then
    access = body:match('"access_token":"([^"]+)"') or access
    refresh = body:match('"refresh_token":"([^"]+)"') or refresh
  end
end

-- done environment --------------------------------------------------------
function done(summary, latency, requests)
  local total = {}
  local unexpected = 0
  local first = nil
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("counts")) do
      if key == "unexpected" then
        unexpected = unexpected + value
      elseif key == "first_unexpected" then
        first = first or value
      else
        total[key] = (total[key] or 0) + value
      end
    end
  end
  local keys = {}
  for key in pairs(total) do
    keys[#keys + 1] = key
  end
  table.sort(keys)
  local seconds = summary.duration / 1e6
  io.write(string.format("requests: %d in %.1f s, %.0f/s\n", summary.requests, seconds,
    summary.requests / seconds))
  io.write("responses by request and status:\n")
  for _, key in ipairs(keys) do
    io.write(string.format("  %-22s %8d\n", key, total[key]))
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  io.write(string.format("latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("unexpected responses: %d\n", unexpected))
  if first then
    io.write("first unexpected: " .. first .. "\n")
  end
  io.write(string.format("SOAK_UNEXPECTED=%d\n", unexpected + socket))
end
