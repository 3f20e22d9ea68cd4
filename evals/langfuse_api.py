"""The few calls of Langfuse's public REST API that trace mode needs: list and read traces, create scores."""

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from evals import backoff
from evals.errors import EvalInputError

_RETRY = {408, 429, 500, 502, 503, 504}


class LangfuseError(EvalInputError):
    """A call Langfuse refused or never answered; `status` is None when it never answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class LangfuseAPI:
    """Basic auth with the project's keys; GET /api/public/traces (paged), GET /api/public/traces/{id}
    (with observations and scores), POST /api/public/scores."""

    def __init__(
        self,
        host: str,
        *,
        public_key: str,
        secret_key: str,
        timeout: float = 30.0,
        attempts: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        self.host = host.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.host, auth=(public_key, secret_key), timeout=timeout)
        self._attempts = attempts
        self._retry_delay = retry_delay

    async def __aenter__(self) -> "LangfuseAPI":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self._attempts):
            wait: float | None = None
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if attempt + 1 == self._attempts:
                    raise LangfuseError(f"cannot reach Langfuse at {self.host}: {exc}") from None
            else:
                status = response.status_code
                if status in (401, 403):
                    raise LangfuseError(
                        f"Langfuse at {self.host} refused the keys (HTTP {status}): "
                        "check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY",
                        status,
                    )
                if status not in _RETRY or attempt + 1 == self._attempts:
                    if response.is_error:
                        text = response.text[:200]
                        raise LangfuseError(f"Langfuse {method} {path} failed: HTTP {status} {text}", status)
                    return response.json()
                wait = backoff.retry_after(response.headers.get("Retry-After"))
            await asyncio.sleep(backoff.delay(self._retry_delay, attempt, wait))
        raise AssertionError("unreachable")

    async def list_traces(
        self,
        *,
        page: int,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page, newest first, and the number of pages."""
        params: list[tuple[str, str | int]] = [
            ("page", page),
            ("limit", limit),
            ("orderBy", "timestamp.desc"),
        ]
        if since is not None:
            params.append(("fromTimestamp", iso(since)))
        if until is not None:
            params.append(("toTimestamp", iso(until)))
        if name:
            params.append(("name", name))
        params += [("tags", tag) for tag in tags or []]
        body = await self._call("GET", "/api/public/traces", params=params)
        return list(body.get("data") or []), int((body.get("meta") or {}).get("totalPages") or 0)

    async def get_trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace in full, or None when it is gone (deleted since it was listed)."""
        try:
            body: dict[str, Any] = await self._call("GET", f"/api/public/traces/{quote(trace_id, safe='')}")
        except LangfuseError as exc:
            if exc.status == 404:
                return None
            raise
        return body

    async def create_score(self, score: dict[str, Any]) -> str:
        body = await self._call("POST", "/api/public/scores", json=score)
        return str(body.get("id", ""))
