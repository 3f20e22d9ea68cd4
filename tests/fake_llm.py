"""A scriptable OpenAI-compatible server on 127.0.0.1 for tests and the benchmark (stdlib only).

Replies are deterministic from the last message:
- a user message containing `[calc:EXPR]`, `[time]` or `[sessions]` gets a tool call
  (calculator, current_datetime, list_my_sessions); `[tool:NAME:{json}]` calls any tool;
- a tool result gets "The tool said: <result>";
- anything else gets "Echo: <text>".
A user message containing `[pace:MS]` is answered with its chunks MS milliseconds apart instead of the
token delay (the benchmark holds streams open on runs that last).
Faults are queued with `script()` and consumed one per chat request: an HTTP status, a delay,
or a stream cut after N chunks. Models whose name starts with "broken" always answer 500.
`script_reply(text, when=...)` answers every later request whose last message contains all the
given strings with that text, until `reset()` (the evals use it to script answers and judge scores).

mem0's fact extraction (a `response_format=json_object` request) gets every `[remember:TEXT]` of
its "New Messages" section as a memory; its faults are queued apart, with `script_extraction()`.
`/v1/embeddings` returns bag-of-words vectors: texts sharing words are near each other.

With `reply_words=N` (off by default), "Echo:" replies are cut or padded to exactly N words, and a
non-streamed one takes as long as its stream would (latency + token delay per chunk): plain and
streamed turns cost the same model time (the benchmark uses it).

Run alone: `python -m tests.fake_llm --port 9100 --latency-ms 200 [--reply-words 20]`.
"""

import argparse
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOOL_PATTERNS = [
    (re.compile(r"\[calc:(.+?)\]"), lambda m: ("calculator", {"expression": m.group(1)})),
    (re.compile(r"\[time\]"), lambda m: ("current_datetime", {"timezone": "UTC"})),
    (re.compile(r"\[sessions\]"), lambda m: ("list_my_sessions", {})),
    (re.compile(r"\[tool:(\w+):(\{.*?\})\]"), lambda m: (m.group(1), json.loads(m.group(2)))),
]


@dataclass
class Fault:
    status: int | None = None
    delay: float = 0.0
    cut_after_chunks: int | None = None
    retry_after: str | None = None
    reply: str | None = None  # answer this text instead of the scripted reply


class FakeLLM:
    def __init__(
        self, *, latency: float = 0.0, token_delay: float = 0.0, reply_words: int | None = None
    ) -> None:
        if reply_words is not None and reply_words < 1:
            raise ValueError("reply_words must be at least 1")
        self.latency = latency
        self.token_delay = token_delay
        self.reply_words = reply_words
        self.requests: deque[dict[str, Any]] = deque(maxlen=500)
        self.record = True
        self._faults: deque[Fault] = deque()
        self._extraction_faults: deque[Fault] = deque()
        self._replies: list[tuple[tuple[str, ...], str]] = []
        self._lock = threading.Lock()
        self.closed_early = 0
        self._server: ThreadingHTTPServer | None = None

    # --- scripting
    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def script_extraction(self, *faults: Fault) -> None:
        with self._lock:
            self._extraction_faults.extend(faults)

    def script_reply(self, text: str, *, when: str | tuple[str, ...]) -> None:
        """Rules are tried in the order given; mem0's extraction requests never match."""
        with self._lock:
            self._replies.append(((when,) if isinstance(when, str) else when, text))

    def scripted_reply(self, messages: list[dict[str, Any]]) -> str | None:
        last = str(messages[-1].get("content") or "") if messages else ""
        with self._lock:
            return next((text for when, text in self._replies if all(w in last for w in when)), None)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._extraction_faults.clear()
            self._replies.clear()
            self.requests.clear()
            self.closed_early = 0
        self.record = True
        self.latency = 0.0
        self.token_delay = 0.0
        self.reply_words = None

    def next_fault(self, *, extraction: bool = False) -> Fault | None:
        with self._lock:
            queue = self._extraction_faults if extraction else self._faults
            return queue.popleft() if queue else None

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [
            r
            for r in list(self.requests)
            if r.get("_path", "").endswith("/chat/completions") and not _is_extraction(r)
        ]

    @property
    def extraction_requests(self) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if _is_extraction(r)]

    # --- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0, backlog: int | None = None) -> str:
        """`backlog`: the listen queue, instead of socketserver's 5, for bursts of new connections."""
        self._server = ThreadingHTTPServer((host, port), _make_handler(self), bind_and_activate=False)
        if backlog is not None:
            self._server.request_queue_size = backlog
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError:
            self._server.server_close()
            raise
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def reply_for(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The reply text and tool calls for a conversation."""
    last = messages[-1] if messages else {"role": "user", "content": ""}
    content = last.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if last.get("role") == "tool":
        return f"The tool said: {content}", []
    for pattern, make in _TOOL_PATTERNS:
        match = pattern.search(content)
        if match:
            name, args = make(match)
            call = {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            return "", [call]
    return f"Echo: {content}", []


_PADDING = ("and", "so", "the", "reply", "goes", "on", "a", "little", "longer", "than", "it", "must")


def shape_reply(text: str, words: int) -> str:
    """`text` cut or padded (with fixed filler words) to exactly `words` words."""
    parts = text.split()[:words]
    parts += [_PADDING[i % len(_PADDING)] for i in range(words - len(parts))]
    return " ".join(parts)


def _stream_chunks(text: str) -> int:
    # As _stream sends a plain reply: the role, one chunk per word, the finish, the usage.
    return 1 + len(text.split(" ")) + 2


def _is_extraction(body: dict[str, Any]) -> bool:
    return (body.get("response_format") or {}).get("type") == "json_object"


_REMEMBER = re.compile(r"\[remember:(.+?)\]")
_PACE = re.compile(r"\[pace:(\d+)\]")


def pace(messages: list[dict[str, Any]], default: float) -> float:
    """Seconds between chunks: the last message's `[pace:MS]`, or `default`."""
    found = _PACE.search(str(messages[-1].get("content") or "")) if messages else None
    return int(found.group(1)) / 1000 if found else default


def extraction_reply(messages: list[dict[str, Any]]) -> str:
    prompt = str(messages[-1].get("content") or "") if messages else ""
    new = prompt.partition("## New Messages")[2].partition("## Observation Date")[0]
    return json.dumps({"memory": [{"text": t.strip()} for t in _REMEMBER.findall(new)]})


def embedding(text: str, dims: int) -> list[float]:
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
    completion = max(1, len(text.split()))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _make_handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if fake.record:
                fake.requests.append({**body, "_path": self.path})
            if self.path.rstrip("/").endswith("/chat/completions"):
                self._chat(body)
            elif self.path.rstrip("/").endswith("/embeddings"):
                self._embeddings(body)
            else:
                self._json(404, {"error": {"message": "not found"}})

        def _embeddings(self, body: dict[str, Any]) -> None:
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            dims = int(body.get("dimensions") or 1536)
            data = [
                {"object": "embedding", "index": i, "embedding": embedding(t, dims)}
                for i, t in enumerate(texts)
            ]
            usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
            self._json(200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage})

        def _chat(self, body: dict[str, Any]) -> None:
            fault = fake.next_fault(extraction=_is_extraction(body))
            delay = fake.latency + (fault.delay if fault else 0.0)
            if delay:
                time.sleep(delay)
            if fault and fault.status:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._json(
                    fault.status, {"error": {"message": "injected fault", "type": "server_error"}}, headers
                )
                return
            if str(body.get("model", "")).startswith("broken"):
                self._json(500, {"error": {"message": "this model is broken", "type": "server_error"}})
                return
            messages = body.get("messages", [])
            token_delay = fake.token_delay if _is_extraction(body) else pace(messages, fake.token_delay)
            if fault and fault.reply is not None:
                text, calls = fault.reply, []
            elif _is_extraction(body):
                text, calls = extraction_reply(messages), []
            elif (scripted := fake.scripted_reply(messages)) is not None:
                text, calls = scripted, []
            else:
                text, calls = reply_for(messages)
                if fake.reply_words is not None and not calls and text.startswith("Echo:"):
                    text = shape_reply(text, fake.reply_words)
                    if not body.get("stream") and token_delay:
                        time.sleep(token_delay * _stream_chunks(text))
            if body.get("stream"):
                self._stream(body, text, calls, fault, token_delay)
                return
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            self._json(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
                    ],
                    "usage": _usage(messages, text),
                },
            )

        def _stream(
            self,
            body: dict[str, Any],
            text: str,
            calls: list[dict[str, Any]],
            fault: Fault | None,
            token_delay: float,
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            base = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake-model"),
            }
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            if calls:
                deltas += [{"tool_calls": [{"index": i, **c}]} for i, c in enumerate(calls)]
            else:
                words = text.split(" ")
                deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
            chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
            chunks.append(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}
                    ],
                }
            )
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**base, "choices": [], "usage": _usage(body.get("messages", []), text)})
            try:
                for i, chunk in enumerate(chunks):
                    if fault and fault.cut_after_chunks is not None and i >= fault.cut_after_chunks:
                        self.close_connection = True
                        self.wfile.flush()
                        return  # no terminating chunk: the client sees the connection drop mid-stream
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                    if token_delay:
                        time.sleep(token_delay)
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                fake.closed_early += 1
                self.close_connection = True

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--reply-words", type=int, default=None, help="plain replies of exactly N words")
    parser.add_argument("--backlog", type=int, default=None, help="listen queue (socketserver's default: 5)")
    args = parser.parse_args()
    fake = FakeLLM(
        latency=args.latency_ms / 1000, token_delay=args.token_delay_ms / 1000, reply_words=args.reply_words
    )
    print(fake.start(port=args.port, backlog=args.backlog), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
