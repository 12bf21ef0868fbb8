-- POST /auth/refresh, chaining each rotated token. Run with one connection
-- per thread (-t N -c N): each thread owns one session read from the file
-- named by TOKENS (one refresh token per line).
local tokens = {}
local n = 0
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = line
end
function setup(thread)
  n = n + 1
  thread:set("token", tokens[n])
end
function request()
  return wrk.format("POST", "/auth/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then token = t end
end
