"""The few calls of Langfuse's public REST API that trace mode needs (Basic auth with the project keys).

GET /api/public/traces (paged; fromTimestamp, toTimestamp, name, tags), GET /api/public/traces/{id}
(with observations and scores), POST /api/public/scores.
"""

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from evals.errors import EvalInputError

_RETRY = {429, 500, 502, 503, 504}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class LangfuseAPI:
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
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if attempt + 1 == self._attempts:
                    raise EvalInputError(f"cannot reach Langfuse at {self.host}: {exc}") from None
            else:
                if response.status_code in (401, 403):
                    raise EvalInputError(
                        f"Langfuse at {self.host} refused the keys (HTTP {response.status_code}): "
                        "check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"
                    )
                if response.status_code not in _RETRY or attempt + 1 == self._attempts:
                    if response.is_error:
                        status, text = response.status_code, response.text[:200]
                        raise EvalInputError(f"Langfuse {method} {path} failed: HTTP {status} {text}")
                    return response.json()
            await asyncio.sleep(self._retry_delay * 2**attempt)
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

    async def get_trace(self, trace_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self._call("GET", f"/api/public/traces/{quote(trace_id, safe='')}")
        return body

    async def create_score(self, score: dict[str, Any]) -> str:
        body = await self._call("POST", "/api/public/scores", json=score)
        return str(body.get("id", ""))
