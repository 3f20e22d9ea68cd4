"""Pure ASGI middleware: request context, metrics and access log; body size limit.

Pure ASGI keeps streaming responses unbuffered and costs one function call per message.
"""

import json
import re
import uuid
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

import structlog
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_body
from app.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, UNMATCHED_ROUTE

log = structlog.get_logger(__name__)
# A caller's request id is kept only if it is short and plain: it goes into every log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# Any token is a valid method: labels take the standard ones only, so that a client cannot add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """The route template of a request, for metric labels: never the raw path, which holds ids.

    FastAPI 0.165 keeps an included route's path relative to its router (`/health` for
    `/api/v1/health` too), so the full templates come from the app's flattened route list, once.
    """

    def __init__(self, routes: Iterable[Any]) -> None:
        self._by_endpoint: dict[Callable[..., Any], list[tuple[str, re.Pattern[str]]]] = {}
        self._all: list[tuple[str, re.Pattern[str]]] = []
        for route in iter_route_contexts(list(routes)):
            if route.path_format is None or route.endpoint is None:
                continue
            entry = (route.path_format, route.path_regex)
            self._all.append(entry)
            self._by_endpoint.setdefault(route.endpoint, []).append(entry)

    def label(self, scope: Scope) -> str:
        candidates = self._by_endpoint.get(scope.get("endpoint"))  # type: ignore[arg-type]
        if candidates and len(candidates) == 1:
            return candidates[0][0]
        # Refused before routing (413), served by two routes, or no route at all.
        path = scope["path"]
        for template, regex in candidates or self._all:
            if regex.match(path):
                return template
        return UNMATCHED_ROUTE


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestObservabilityMiddleware:
    """Per request: a request id (echoed as X-Request-ID) bound to every log line, the HTTP metrics by
    route template, and one access log line."""

    def __init__(self, app: ASGIApp, skip_paths: set[str]) -> None:
        self.app = app
        self.skip_paths = skip_paths
        self._routes: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        echo = (b"x-request-id", request_id.encode())
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echo]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = perf_counter() - started
            if self._routes is None:
                self._routes = RouteTemplates(scope["app"].routes)
            route = self._routes.label(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, route, status).inc()
            HTTP_LATENCY.labels(method, route, status).observe(elapsed)
            log.info(
                "http.request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing re-raises it instead of turning it into a 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request body is larger than {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Reject bodies over `max_bytes` with 413, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        payload = json.dumps(error_body("payload_too_large", BodyTooLarge(self.max_bytes).detail)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


# The web app needs nothing from another origin and runs no inline script (tests/web checks it).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeadersMiddleware:
    """The browser security headers on every response but the API docs', whose page loads its
    scripts from a CDN and runs inline ones (they keep nosniff and no framing)."""

    def __init__(self, app: ASGIApp, relaxed_paths: set[str]) -> None:
        self.app = app
        self.relaxed_paths = relaxed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _SECURITY_HEADERS[1:] if scope["path"] in self.relaxed_paths else _SECURITY_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
