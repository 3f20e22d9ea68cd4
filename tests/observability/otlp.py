"""A loopback stand-in for Langfuse's OTLP endpoint: decodes what the SDK exports (gzipped protobuf),
and keeps the scores it posts in batches."""

import gzip
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int

    @property
    def kind(self) -> str:
        return str(self.attributes.get("langfuse.observation.type", ""))

    def json_attribute(self, key: str) -> Any:
        value = self.attributes.get(key)
        return json.loads(value) if isinstance(value, str) else value


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.scores: list[dict[str, Any]] = []  # as posted, in order
        self.authorizations: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == SCORES_PATH:
                    gzipped = self.headers.get("Content-Encoding") == "gzip"
                    batch = json.loads(gzip.decompress(body) if gzipped else body)
                    with receiver._lock:
                        receiver.scores.extend(batch if isinstance(batch, list) else [batch])
                    reply = b'{"message": "Accepted"}'
                    self.send_response(202)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                if self.path != TRACES_PATH:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._store(ExportTraceServiceRequest.FromString(body), self.headers.get("Authorization"))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _store(self, request: ExportTraceServiceRequest, authorization: str | None) -> None:
        spans = [
            Span(
                trace_id=s.trace_id.hex(),
                span_id=s.span_id.hex(),
                parent_id=s.parent_span_id.hex() or None,
                name=s.name,
                attributes={a.key: _value(a.value) for a in s.attributes},
                start_ns=s.start_time_unix_nano,
                end_ns=s.end_time_unix_nano,
            )
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        with self._lock:
            self.spans.extend(spans)
            if authorization:
                self.authorizations.add(authorization)

    def traces(self) -> dict[str, list[Span]]:
        by_trace: dict[str, list[Span]] = defaultdict(list)
        with self._lock:
            for span in self.spans:
                by_trace[span.trace_id].append(span)
        return dict(by_trace)

    def __enter__(self) -> "OtlpReceiver":
        threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
