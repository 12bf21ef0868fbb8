-- GET /auth/me with a bearer token from the TOKEN environment variable.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
