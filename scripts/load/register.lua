-- POST /auth/register with a fresh email per request.
-- `id` is a global so that thread:set reaches it (a chunk local would shadow it).
counter = 0
id = 0
function setup(thread)
  id = id + 1
  thread:set("id", id)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"load-%s-%d-%d@example.com","password":"Zq8#vT2!mW-horse"}',
    os.getenv("RUN") or "0", id, counter)
  return wrk.format("POST", "/auth/register", {["Content-Type"] = "application/json"}, body)
end
