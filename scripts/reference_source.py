#!/usr/bin/env python3
"""A reference "data source": one of the job site's own systems, as the portal calls it.

A plain WSGI app (standard library only) that takes the portal's signed call, checks its
signature, answers 202, and a moment later POSTs the signed answer to the call's callback:
for a disclosure, sample rows it "holds" for that pseudonymous student id; for a deletion
or a cessation, a confirmation. The tests start it on loopback; `make run` starts two.

    python scripts/reference_source.py --port 8101 --secret S --name Applications \\
        --holds "job applications"

Its signing is the portal's (disclosure/signing.py), copied here so this file stands alone.
"""

import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

MAX_AGE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sample_rows(name: str, holds: str, student: str) -> list[dict]:
    # Deterministic per student, so a test can check what reached the report.
    seed = int(hashlib.sha256(student.encode()).hexdigest()[:6], 16)
    return [
        {
            "system": name,
            "holds": holds,
            "item": f"{holds} #{seed % 1000 + i}",
            "at": f"2026-0{i}-01",
        }
        for i in (1, 2, 3)
    ]


class Source:
    def __init__(self, *, secret: str, name: str, holds: str, delay: float, log=print):
        self.secret, self.name, self.holds, self.delay, self.log = secret, name, holds, delay, log
        self.calls: list[dict] = []  # what it was asked, for the tests

    def answer_later(self, call: dict) -> None:
        time.sleep(self.delay)
        if call["kind"] == "disclosure":
            body = {
                "answer": "disclosed",
                "data": {"rows": sample_rows(self.name, self.holds, call["student"])},
            }
        else:
            body = {"answer": "confirmed", "data": {}}
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        timestamp = str(int(time.time()))
        if not call["callback"].startswith(("http://", "https://")):
            return
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            call["callback"],
            data=raw,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Portal-Timestamp": timestamp,
                "X-Portal-Signature": signature(self.secret, timestamp, raw),
            },
        )
        for attempt in range(5):  # the portal may be briefly away: try again with backoff
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    self.log(f"[{self.name}] callback {response.status} for {call['request']}")
                    return
            except urllib.error.HTTPError as exc:
                self.log(f"[{self.name}] callback refused {exc.code}: {exc.read()[:200]!r}")
                if exc.code < 500:
                    return
            except OSError as exc:
                self.log(f"[{self.name}] callback failed: {exc}")
            time.sleep(2**attempt)

    def __call__(self, environ, start_response):
        def reply(status: str, payload: dict):
            raw = json.dumps(payload).encode()
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
            )
            return [raw]

        if environ["REQUEST_METHOD"] != "POST":
            return reply("405 Method Not Allowed", {"error": "POST only"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(min(length, 1024 * 1024))
        timestamp = environ.get("HTTP_X_PORTAL_TIMESTAMP", "")
        sig = environ.get("HTTP_X_PORTAL_SIGNATURE", "")
        try:
            fresh = abs(time.time() - int(timestamp)) <= MAX_AGE_SECONDS
        except ValueError:
            fresh = False
        if not fresh or not hmac.compare_digest(signature(self.secret, timestamp, body), sig):
            return reply("401 Unauthorized", {"error": "bad or stale signature"})
        try:
            call = json.loads(body)
        except ValueError:
            call = None
        if not isinstance(call, dict) or not {"request", "kind", "student", "callback"} <= set(
            call
        ):
            return reply("400 Bad Request", {"error": "bad body"})
        self.calls.append(call)
        self.log(f"[{self.name}] {call['kind']} for student {call['student']}")
        threading.Thread(target=self.answer_later, args=(call,), daemon=True).start()
        return reply("202 Accepted", {"accepted": call["request"]})


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


def serve(source: Source, *, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """A server for `source` (port 0: any free one); call serve_forever() on it."""
    return make_server(
        host, port, source, server_class=_ThreadingServer, handler_class=_QuietHandler
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--holds", required=True)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before answering")
    args = parser.parse_args(argv)
    source = Source(secret=args.secret, name=args.name, holds=args.holds, delay=args.delay)
    server = serve(source, port=args.port)
    print(f"[{args.name}] listening on http://127.0.0.1:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
