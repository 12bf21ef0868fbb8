"""An aiosmtpd SMTP server that keeps every message it receives as a file.

Run by scripts/smtp.sh inside its venv:

    python scripts/smtp_sink.py --host 127.0.0.1 --port 0 --dir MAILDIR --port-file FILE

Each message is written, exactly as received in DATA (after dot-unstuffing,
CRLF line ends), to MAILDIR/<n>.eml, n = 1, 2, ...; the file appears
atomically (written as .<n>.tmp, then renamed), so a reader never sees half
a message. The envelope (sender, recipients) goes to MAILDIR/<n>.json.

--port 0 binds a free port. Once the server listens, the bound port is
written to FILE (also atomically): the caller waits for it.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal

from aiosmtpd.smtp import SMTP


class Sink:
    """aiosmtpd handler: accept every message, store it as a file."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.directory, name))

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}
        self._write("%d.json" % n, json.dumps(meta).encode())
        self._write("%d.eml" % n, raw)
        logging.info("stored message %d from %s to %s", n, envelope.mail_from, envelope.rcpt_tos)
        return "250 OK message stored"


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    handler = Sink(args.dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="portcullis-test-smtp"), args.host, args.port
    )
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    logging.info("aiosmtpd listening on %s:%d, storing mail in %s", args.host, port, args.dir)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    logging.info("stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main())
