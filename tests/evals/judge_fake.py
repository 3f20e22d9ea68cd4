"""A loopback judge that counts the requests it is serving at once, and answers each after a pause."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingJudge:
    def __init__(self, *, pause: float = 0.05, score: float = 0.5) -> None:
        self.pause = pause
        self.score = score
        self.in_flight = 0
        self.peak = 0
        self.served = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.served += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def __enter__(self) -> "CountingJudge":
        threading.Thread(target=self._server.serve_forever, name="counting-judge", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: CountingJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake.enter()
            try:
                threading.Event().wait(fake.pause)
                content = json.dumps({"score": fake.score, "reason": "counted"})
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())
            finally:
                fake.leave()

    return Handler
