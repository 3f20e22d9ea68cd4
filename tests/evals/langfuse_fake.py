"""A loopback stand-in for the parts of Langfuse's public API that trace mode uses (list, read, score)."""

import base64
import json
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PUBLIC_KEY, SECRET_KEY = "pk-lf-evals", "sk-lf-evals"
MAX_LIMIT = 100


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _observation(trace_id: str, kind: str, name: str, start: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "traceId": trace_id,
        "type": kind,
        "name": name,
        "startTime": start.isoformat(),
        **fields,
    }


def make_trace(
    *,
    user: str,
    reply: str,
    age: timedelta = timedelta(minutes=5),
    tags: tuple[str, ...] = ("env:production",),
    memories: tuple[str, ...] = (),
    tools: tuple[tuple[str, dict[str, Any], str], ...] = (),
    usage: tuple[int, int] = (120, 30),
    latency_s: float = 1.25,
    history: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A `chat.turn` trace shaped like the service's: the graph's input and final state, a recall
    span, one TOOL observation per tool call and a GENERATION with usage details."""
    trace_id = uuid.uuid4().hex
    now = datetime.now(UTC) - age
    past = [{"type": "human" if role == "user" else "ai", "content": text} for role, text in history]
    asked = {"type": "human", "content": user, "id": str(uuid.uuid4())}
    answer = {"type": "ai", "content": reply, "tool_calls": [], "usage_metadata": {"input_tokens": usage[0]}}
    observations = [
        _observation(
            trace_id, "CHAIN", "recall", now, input={"messages": [asked]}, output={"memories": [*memories]}
        ),
        _observation(
            trace_id,
            "GENERATION",
            "ChatOpenAI",
            now + timedelta(milliseconds=5),
            model="gpt-4o-mini",
            usageDetails={"input": usage[0], "output": usage[1], "total": sum(usage)},
        ),
    ]
    for i, (name, args, result) in enumerate(tools):
        at = now + timedelta(milliseconds=10 + i)
        observations.append(
            _observation(trace_id, "TOOL", name, at, input=args, output=result, level="DEFAULT")
        )
    return {
        "id": trace_id,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "name": "chat.turn",
        "input": {"messages": [asked]},
        "output": {"messages": [*past, asked, answer], "memories": list(memories)},
        "sessionId": str(uuid.uuid4()),
        "userId": str(uuid.uuid4()),
        "tags": list(tags),
        "environment": "production",
        "latency": latency_s,
        "totalCost": 0.0001,
        "htmlPath": f"/project/p/traces/{trace_id}",
        "observations": observations,
        "scores": [],
    }


class FakeLangfuse:
    """GET /api/public/traces answers `{"data": [...], "meta": {"page", "limit", "totalItems",
    "totalPages"}}` with observation and score ids; GET /api/public/traces/{id} the trace in full;
    POST /api/public/scores stores (or, with a known id, replaces) a score. Basic auth throughout.

    `after_list(page)` runs once each page has been served; `faults` are answered instead, one per
    request, as (status, headers); a score named in `refuse` (trace id, metric) gets a 400."""

    def __init__(self) -> None:
        self.traces: dict[str, dict[str, Any]] = {}
        self.scores: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # method, path, query
        self.after_list: Callable[[int], None] = lambda page: None
        self.faults: deque[tuple[int, dict[str, str]]] = deque()
        self.refuse: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, *traces: dict[str, Any]) -> None:
        with self._lock:
            for trace in traces:
                self.traces[trace["id"]] = trace

    def scores_of(self, trace_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {s["name"]: s for s in self.scores.values() if s["traceId"] == trace_id}

    def list_page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        page, limit = int(query.get("page", ["1"])[0]), int(query.get("limit", ["50"])[0])
        if page < 1 or not 1 <= limit <= MAX_LIMIT:
            return 400, {"message": "Invalid request data"}
        with self._lock:
            found = list(self.traces.values())
        if "name" in query:
            found = [t for t in found if t["name"] == query["name"][0]]
        if "fromTimestamp" in query:
            found = [t for t in found if _time(t["timestamp"]) >= _time(query["fromTimestamp"][0])]
        if "toTimestamp" in query:
            found = [t for t in found if _time(t["timestamp"]) < _time(query["toTimestamp"][0])]
        found = [t for t in found if all(tag in t["tags"] for tag in query.get("tags", []))]
        order = query.get("orderBy", ["timestamp.desc"])[0]
        found.sort(key=lambda t: _time(t["timestamp"]), reverse=order.endswith(".desc"))
        items = found[(page - 1) * limit : page * limit]
        data = [self._summary(t) for t in items]
        meta = {
            "page": page,
            "limit": limit,
            "totalItems": len(found),
            "totalPages": math.ceil(len(found) / limit),
        }
        return 200, {"data": data, "meta": meta}

    def _summary(self, trace: dict[str, Any]) -> dict[str, Any]:
        full = self.detail(trace["id"])
        assert full is not None
        observations, scores = [o["id"] for o in full["observations"]], [s["id"] for s in full["scores"]]
        return {**full, "observations": observations, "scores": scores}

    def detail(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            trace = self.traces.get(trace_id)
            if trace is None:
                return None
            scores = [s for s in self.scores.values() if s["traceId"] == trace_id]
        return {**trace, "scores": [*trace["scores"], *scores]}

    def remove(self, trace_id: str) -> None:
        with self._lock:
            del self.traces[trace_id]

    def create_score(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (body.get("traceId"), body.get("name")) in self.refuse:
            return 400, {"message": "Invalid request data: refused by the test"}
        if not isinstance(body.get("name"), str) or not isinstance(body.get("value"), int | float):
            return 400, {"message": "Invalid request data: name and value are required"}
        if body.get("dataType", "NUMERIC") not in ("NUMERIC", "BOOLEAN", "CATEGORICAL"):
            return 400, {"message": "Invalid dataType"}
        score_id = str(body.get("id") or uuid.uuid4())  # the same id again replaces the score
        with self._lock:
            self.scores[score_id] = {
                **body,
                "id": score_id,
                "dataType": body.get("dataType", "NUMERIC"),
                "source": "API",
                "timestamp": body.get("timestamp") or datetime.now(UTC).isoformat(),
            }
        return 200, {"id": score_id}

    def __enter__(self) -> "FakeLangfuse":
        threading.Thread(target=self._server.serve_forever, name="fake-langfuse", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeLangfuse) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            fake.requests.append((method, url.path, query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = fake.faults.popleft() if fake.faults else None
            if fault is not None:
                self._reply(fault[0], {"message": "injected fault"}, fault[1])
            elif self.headers.get("Authorization") != expected:
                self._reply(401, {"message": "Invalid credentials"})
            elif method == "GET" and url.path == "/api/public/traces":
                answer = fake.list_page(query)
                fake.after_list(int(query.get("page", ["1"])[0]))  # before the client can ask again
                self._reply(*answer)
            elif method == "GET" and url.path.startswith("/api/public/traces/"):
                trace = fake.detail(unquote(url.path.rsplit("/", 1)[1]))
                self._reply(200, trace) if trace else self._reply(404, {"message": "Trace not found"})
            elif method == "POST" and url.path == "/api/public/scores":
                self._reply(*fake.create_score(json.loads(body or b"{}")))
            else:
                self._reply(404, {"message": "not found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler
