"""Runs oidc-provider-mock (PyPI), a real OpenID provider, for the OAuth tests.

Run by scripts/oidc.sh inside its venv:

    python scripts/oidc/serve.py --host 127.0.0.1 --port 0 --port-file FILE

The server is the package's own Flask app (discovery, JWKS, authorization
form, token and userinfo endpoints, `PUT /users/{sub}` to set a user's
claims), served by uvicorn as the package's CLI does. The socket is bound
here, so --port 0 picks a free port without a race; once it is bound the
port is written to FILE (atomically: written as FILE.tmp, then renamed).
The caller then waits until discovery answers.

Nonces are required: an authorization request without one is refused, so
the tests prove that the client sends it.
"""

import argparse
import logging
import os
import socket
import sys

# Plain http on the loopback interface (authlib refuses it otherwise).
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import oidc_provider_mock  # noqa: E402
import uvicorn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    app = oidc_provider_mock.app(require_nonce=True)
    server = uvicorn.Server(
        uvicorn.Config(app, interface="wsgi", log_config=None, log_level="info")
    )

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    logging.info("oidc-provider-mock %s listening on %s:%d", version(), args.host, port)

    server.run(sockets=[sock])


def version():
    from importlib.metadata import version as dist_version

    return dist_version("oidc-provider-mock")


if __name__ == "__main__":
    main()
