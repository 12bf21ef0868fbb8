-- POST /auth/login for the load user (correct password: full Argon2id verify).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"load@example.com","password":"Zq8#vT2!mW-horse"}'
