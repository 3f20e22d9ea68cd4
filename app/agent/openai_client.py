"""One OpenAI-compatible client for every model, and a lean `chat.completions.create`.

The SDK's `create` re-walks the whole request against its TypedDict annotations before sending
(about 5 ms for a 30-message conversation with three tools, on every call). LangChain already builds
the wire-format payload, so this sends it through the client's documented `post` for custom requests.
Retries, timeouts, auth and error mapping are still the SDK's. Replies and stream chunks come back as
the JSON dicts LangChain reads: it would dump the SDK's models back to dicts, after the SDK built them
(about 0.1 ms a streamed token, twice).
"""

from typing import Any

import openai
from openai import AsyncStream

from app.config import Settings

# Sent when no key is configured: OpenAI-compatible local servers ignore it; the client insists on one.
_NO_KEY = "not-needed"
# The header the SDK's own `with_raw_response` sets to get the response object instead of the parsed body.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def build_client(settings: Settings) -> openai.AsyncOpenAI:
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else _NO_KEY
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.llm_base_url,
        timeout=settings.llm_request_timeout,
        # Retries connection errors, 408/409/429 and 5xx with exponential backoff.
        max_retries=settings.llm_max_retries,
    )


class DirectCompletions:
    """Stands in for `client.chat.completions` inside ChatOpenAI."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client
        self.with_raw_response = _RawResponse(self)

    async def create(self, **payload: Any) -> Any:
        options: dict[str, Any] = {"security": {"bearer_auth": True}}
        if headers := payload.pop("extra_headers", None):
            options["headers"] = headers
        if query := payload.pop("extra_query", None):
            options["params"] = query
        if extra := payload.pop("extra_body", None):
            options["extra_json"] = extra
        if "timeout" in payload:
            options["timeout"] = payload.pop("timeout")
        return await self._client.post(
            "/chat/completions",
            body=payload,
            options=options,  # type: ignore[call-overload]
            # Plain dicts: LangChain reads dicts, and dumps SDK models back to dicts first.
            cast_to=object,
            stream=bool(payload.get("stream")),
            stream_cls=AsyncStream[object],
        )


class _RawResponse:
    """`with_raw_response.create(...)`: the response object, with `.parse()` and `.headers`."""

    def __init__(self, parent: DirectCompletions) -> None:
        self._parent = parent

    async def create(self, **payload: Any) -> Any:
        headers = {**(payload.pop("extra_headers", None) or {}), _RAW_RESPONSE_HEADER: "true"}
        return await self._parent.create(extra_headers=headers, **payload)
