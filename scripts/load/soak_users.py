#!/usr/bin/env python3
"""Creates the soak's users: registers and signs in N users (each from its own
client IP, through X-Forwarded-For) and prints one line per user,
"email access_token refresh_token", for scripts/load/soak.lua.

    soak_users.py URL N RUN
"""
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "Zq8#vT2!mW-horse"


def post(url, path, ip, body):
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": ip},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        raise SystemExit(f"POST {path} for {body.get('email')}: {err.code} {err.read().decode()}")


def user(url, run, n):
    email = f"soak-user-{run}-{n}@example.com"
    ip = f"10.250.{n // 256}.{n % 256}"
    post(url, "/auth/register", ip, {"email": email, "password": PASSWORD})
    _, pair = post(url, "/auth/login", ip, {"email": email, "password": PASSWORD})
    return f"{email} {pair['access_token']} {pair['refresh_token']}"


def main():
    url, count, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with ThreadPoolExecutor(max_workers=4) as pool:
        lines = list(pool.map(lambda n: user(url, run, n), range(1, count + 1)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
