"""Verifies Portcullis access tokens with PyJWT, an implementation nobody
on this project wrote, knowing only the JWKS URL, the issuer and the
audience: what a microservice does to check tokens without calling the
auth service.

    python verify.py JWKS_URL ISSUER AUDIENCE TOKEN...

Prints one JSON line per token: {"ok": true, "alg", "kid", "claims"} or
{"ok": false, "error": <PyJWT exception class>, "message"}. Exits 0 when
every token got an answer (valid or not), 2 on a usage or network error.
"""

import json
import sys

import jwt

ALGORITHMS = ["RS256", "EdDSA"]


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    url, issuer, audience, tokens = argv[1], argv[2], argv[3], argv[4:]
    client = jwt.PyJWKClient(url, cache_keys=True)
    for token in tokens:
        try:
            key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=issuer,
                audience=audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            header = jwt.get_unverified_header(token)
            print(json.dumps({"ok": True, "alg": header["alg"], "kid": key.key_id, "claims": claims}))
        except jwt.PyJWKClientConnectionError as err:
            print(f"cannot fetch {url}: {err}", file=sys.stderr)
            return 2
        except jwt.PyJWTError as err:
            print(json.dumps({"ok": False, "error": type(err).__name__, "message": str(err)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
