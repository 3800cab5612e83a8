#!/usr/bin/env python3
"""A webhook receiver for presenced that checks every delivery's signature.

    PRESENCED_WEBHOOK_SECRET=... python3 receiver.py [--listen 127.0.0.1:8099]

Create the webhook with the same secret:

    presenced webhooks add http://127.0.0.1:8099/presenced --all --secret "$PRESENCED_WEBHOOK_SECRET"

Each delivery is a POST of one JSON event with the headers
Presenced-Event-Id, Presenced-Timestamp (unix seconds) and
Presenced-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body)).
A delivery is accepted (204) when its signature is right and its timestamp
within five minutes; it is then printed as one JSON line on standard
output. Anything else is answered 401 and not printed. Ids increase; a
crash of presenced can repeat a delivery, and the id tells the repeat,
so this receiver drops an id it has already printed.

Python 3 standard library only.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_SKEW = 300  # seconds
MAX_BODY = 1 << 20


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """The check presenced's signature is made for."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > MAX_SKEW:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    # The header may carry several signatures (v1=..., v1=...) while a
    # secret is being changed.
    for part in signature.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class Receiver(BaseHTTPRequestHandler):
    secret = b""
    seen = set()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        ok = verify(self.secret, self.headers.get("Presenced-Timestamp", ""), body,
                    self.headers.get("Presenced-Signature", ""))
        if not ok:
            self.send_response(401)
            self.end_headers()
            print("rejected: bad signature or timestamp", file=sys.stderr, flush=True)
            return
        event = json.loads(body)
        event_id = self.headers.get("Presenced-Event-Id", "")
        self.send_response(204)
        self.end_headers()
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        print(json.dumps(event, sort_keys=True), flush=True)

    def log_message(self, *args):
        pass  # requests are not logged; events are printed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8099", help="address to listen on (port 0: any free one)")
    args = p.parse_args()
    secret = os.environ.get("PRESENCED_WEBHOOK_SECRET", "")
    if len(secret) < 16:
        sys.exit("set PRESENCED_WEBHOOK_SECRET to the webhook's secret (16 characters or more)")
    Receiver.secret = secret.encode()
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Receiver)
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
