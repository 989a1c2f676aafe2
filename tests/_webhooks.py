"""Webhook receivers on loopback for the subscription tests: planned answers, and receivers that stall."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Receiver"]


class Receiver:
    """A webhook receiver: answers each path with the statuses planned for it, then 200; keeps every request.

    With `stall` (seconds) it keeps every request waiting that long before answering, as a dead or overloaded
    receiver does; a request is recorded when it arrives, so a test sees when the hub called, not when it gave up.
    """

    def __init__(self, stall: float = 0) -> None:
        self.requests: list[dict] = []
        self.plans: dict[str, list[int]] = {}
        self.released = threading.Event()  # set when the test ends: stalled requests then end at once
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                plan = receiver.plans.get(self.path, [])
                status = plan.pop(0) if plan else 200
                receiver.requests.append({"path": self.path, "at": time.monotonic(),
                                          "wall": dt.datetime.now(dt.timezone.utc), "headers": dict(self.headers),
                                          "body": body, "status": status})
                if stall:
                    receiver.released.wait(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the hub gave up on this request and closed the connection
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
