"""A tiny local webhook receiver for the demo and the tests.

It answers 500 to the first POST of each delivery (a path and a body it has not seen) and 200 when
the same delivery comes again, so every webhook job visibly fails once and succeeds on its retry
(a retry sends the same body). Every request is logged (stdout) and kept in `server.received`.

    python examples/receiver.py [PORT]      # default: a free port, printed at start
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO


@dataclass(frozen=True)
class Delivery:
    """One request as received."""

    path: str
    attempt: int
    """1 for the first request of this body on this path."""
    status: int
    """What the receiver answered."""
    body: Any
    """The JSON body (or the raw text when it was not JSON)."""


class Receiver(ThreadingHTTPServer):
    """The server: `url`, `received` (every Delivery), and a log stream (None for silence)."""

    daemon_threads = True

    def __init__(self, port: int = 0, log: TextIO | None = sys.stdout) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.log = log
        self.received: list[Delivery] = []
        self._attempts: Counter[tuple[str, bytes]] = Counter()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, raw: bytes) -> Delivery:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self._attempts[path, raw] += 1
            attempt = self._attempts[path, raw]
            delivery = Delivery(path, attempt, 500 if attempt == 1 else 200, body)
            self.received.append(delivery)
        if self.log is not None:
            outcome = ("500 (first try of this delivery: fail it)" if delivery.status == 500
                       else "200 (seen before: a retry)")
            stamp = time.strftime("%H:%M:%S")
            # One write per line, so it does not interleave with the workers' log lines.
            self.log.write(f"{stamp} receiver: POST {path} #{attempt} → {outcome} {json.dumps(body)}\n")
            self.log.flush()
        return delivery

    def start(self) -> threading.Thread:
        """Serve from a daemon thread; `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="webhook-receiver", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        delivery = self.server.record(self.path, raw)
        payload = json.dumps({"ok": delivery.status == 200, "attempt": delivery.attempt}).encode()
        self.send_response(delivery.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Receiver.record logs one line per request instead


def main(argv: list[str]) -> int:
    port = int(argv[0]) if argv else 0
    server = Receiver(port)
    print(f"webhook receiver on {server.url} (500 on each delivery's first POST, 200 on its retry); Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
