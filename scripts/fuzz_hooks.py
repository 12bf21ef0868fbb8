"""Schemathesis hooks for scripts/fuzz.sh: a valid superuser access token on
every generated request.

Fuzzed calls end sessions (POST /auth/logout with the token it is given,
POST /auth/sessions/revoke-others, DELETE /auth/sessions/{id}), so one token
fetched at the start would soon be dead and every authenticated operation
would only ever answer 401. The provider is registered without caching
(refresh_interval=None): before each request it checks the token it holds
with GET /auth/me and signs in again (POST /auth/login) when that token no
longer works. The superuser's credentials and the server's URL come from the
environment fuzz.sh sets (FUZZ_BASE_URL, FUZZ_EMAIL, FUZZ_PASSWORD).

Schemathesis still runs its own auth checks (ignored_auth replaces or drops
the header this provider sets), so the 401 paths are exercised too.
"""

import json
import os
import threading
import urllib.error
import urllib.request

import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"].rstrip("/")
EMAIL = os.environ["FUZZ_EMAIL"]
PASSWORD = os.environ["FUZZ_PASSWORD"]

_lock = threading.Lock()
_token = None
# Counts, written to FUZZ_AUTH_STATS at exit: how often a token was checked
# and how often a new sign-in was needed.
_stats = {"checks": 0, "sign_ins": 0}


def _request(method, path, token=None, body=None):
    headers = {"Accept": "application/json"}
    data = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(BASE_URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _sign_in():
    status, body = _request("POST", "/auth/login", body={"email": EMAIL, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"superuser sign-in failed: {status} {body[:200]!r}")
    _stats["sign_ins"] += 1
    return json.loads(body)["access_token"]


def _write_stats():
    path = os.environ.get("FUZZ_AUTH_STATS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_stats, f)


@schemathesis.auth(refresh_interval=None)
class SuperuserToken:
    def get(self, case, context):
        global _token
        with _lock:
            _stats["checks"] += 1
            if _token is not None:
                status, _ = _request("GET", "/auth/me", token=_token)
                if status != 200:
                    _token = None
            if _token is None:
                _token = _sign_in()
            _write_stats()
            return _token

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Schema-valid requests that the server still refuses by a rule OpenAPI 3.0
# cannot state: an unknown or used one-time token (410 TOKEN_GONE), a wrong
# or missing confirmation password, the password policy (common passwords,
# bytes not characters), a display name with control characters, metadata
# keys, a superuser locking themselves out, a redirect target outside the
# configured allow-list, and an address that `format: email` admits but the
# one canonical form refuses (INVALID_EMAIL: not NFKC, a letter whose case
# does not round-trip, a quoted local part). scripts/fuzz.toml lets positive_data_acceptance
# accept 410 and 422 on exactly these operations; this check then requires
# such an answer to carry one of these codes, so any other 422 (a shape or
# type error the spec should have described) still fails the run.
PASSWORD_POLICY = {"PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG", "PASSWORD_TOO_COMMON"}
PROFILE = {"INVALID_NAME", "INVALID_METADATA", "METADATA_TOO_LARGE"}
CANONICAL_EMAIL = {"INVALID_EMAIL"}
SEMANTIC_CODES = {
    "POST /auth/register": {"INVALID_NAME"} | PASSWORD_POLICY | CANONICAL_EMAIL,
    "POST /auth/login": CANONICAL_EMAIL,
    # POST /auth/token answers in RFC 6749 form (400 `invalid_grant` /
    # `invalid_request`), never 410 or 422: no entry.
    "POST /auth/forgot-password": CANONICAL_EMAIL,
    "POST /auth/verify-email/resend": CANONICAL_EMAIL,
    "POST /auth/email-code": CANONICAL_EMAIL,
    "POST /auth/account/confirm-email-change": {"TOKEN_GONE"},
    "POST /auth/reset-password": {"TOKEN_GONE"} | PASSWORD_POLICY,
    "POST /auth/account/set-password": PASSWORD_POLICY,
    "POST /auth/account/change-password": {"WRONG_PASSWORD"} | PASSWORD_POLICY,
    "POST /auth/account/change-email": {"WRONG_PASSWORD", "PASSWORD_REQUIRED", "SAME_EMAIL", "TOKEN_GONE"}
    | CANONICAL_EMAIL,
    "DELETE /auth/account": {"WRONG_PASSWORD", "CONFIRMATION_REQUIRED", "TOKEN_GONE"},
    "GET /auth/verify-email": {"TOKEN_GONE"},
    "POST /auth/verify-email": {"TOKEN_GONE"},
    "GET /auth/account/confirm-email-change": {"TOKEN_GONE"},
    "GET /auth/magic-link/verify": {"TOKEN_GONE"},
    "POST /auth/magic-link/verify": {"TOKEN_GONE"},
    "POST /auth/magic-link": {"REDIRECT_NOT_ALLOWED"} | CANONICAL_EMAIL,
    "POST /auth/email-code/verify": {"TOKEN_GONE"},
    # Second factors: a code the app did not show, a challenge unknown or
    # used, or neither / both answers (OpenAPI 3.0 has no oneOf of fields).
    "POST /auth/mfa/totp/confirm": {"INVALID_MFA_CODE", "TOKEN_GONE"},
    "POST /auth/mfa/verify": {"INVALID_MFA_CODE", "INVALID_MFA_ANSWER", "TOKEN_GONE"},
    "POST /auth/mfa/enroll/setup": {"TOKEN_GONE"},
    "POST /auth/mfa/step-up": {"INVALID_MFA_CODE"},
    "POST /auth/mfa/enroll/confirm": {"INVALID_MFA_CODE", "TOKEN_GONE"},
    # Passkeys: an answer WebAuthn refuses (any the spec can describe is
    # JSON of the right shape at best), a ceremony or challenge unknown or
    # used, a name of control characters.
    "POST /auth/passkeys/register": {"INVALID_PASSKEY", "INVALID_NAME", "TOKEN_GONE"},
    "POST /auth/passkeys/login/options": {"TOKEN_GONE"},
    "POST /auth/passkeys/login": {"INVALID_PASSKEY", "TOKEN_GONE"},
    "PATCH /auth/passkeys/{id}": {"INVALID_NAME"},
    "PATCH /users/me": PROFILE,
    "PATCH /users/{id}": PROFILE | {"SELF_LOCKOUT"},
    "DELETE /users/{id}": {"SELF_LOCKOUT"},
    # Roles: the role-name and permission grammar (src/authz.rs) and the
    # description's length in characters are checked by the one parser,
    # not restated as schema patterns.
    "POST /auth/roles": {"INVALID_ROLE_NAME", "INVALID_PERMISSION", "INVALID_DESCRIPTION"},
    "PATCH /auth/roles/{name}": {"INVALID_PERMISSION", "INVALID_DESCRIPTION"},
    # A keyset cursor is opaque: only one this API returned decodes.
    "GET /users": {"INVALID_CURSOR"},
    # Organizations: the name rule (trimmed, no control characters), the
    # role grammar as above, role names that exist only in the
    # organization's data, and mailed invitation tokens.
    "POST /orgs": {"INVALID_NAME"},
    "PATCH /orgs/{id}": {"INVALID_NAME"},
    "PUT /orgs/{id}/members/{user_id}": {"INVALID_ROLES"},
    "POST /orgs/{id}/transfer": {"INVALID_ROLES"},
    "POST /orgs/{id}/invitations": {"INVALID_ROLES"} | CANONICAL_EMAIL,
    "POST /orgs/invitations/accept": {"TOKEN_GONE"},
    "POST /orgs/{id}/roles": {"INVALID_ROLE_NAME", "INVALID_PERMISSION", "INVALID_DESCRIPTION"},
    "PATCH /orgs/{id}/roles/{name}": {"INVALID_PERMISSION", "INVALID_DESCRIPTION"},
}


@schemathesis.check
def only_documented_semantic_rejections(ctx, response, case):
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (410, 422):
        return None
    label = f"{case.operation.method.upper()} {case.operation.path}"
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    allowed = SEMANTIC_CODES.get(label, set())
    if code not in allowed:
        raise AssertionError(
            f"schema-valid request refused with {response.status_code} {code}; "
            f"the only rules the spec cannot state here are: {sorted(allowed) or 'none'}"
        )
    return None
