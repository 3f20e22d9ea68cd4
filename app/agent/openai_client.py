"""One OpenAI-compatible client for every model, and a lean `chat.completions.create`.

The SDK's `create` re-walks the whole request against its TypedDict annotations before sending
(about 5 ms for a 30-message conversation with three tools, on every call). LangChain already builds
the wire-format payload, so this sends it through the client's documented `post` for custom requests.
Retries, timeouts, auth and error mapping are still the SDK's. Replies and stream chunks come back as
the JSON dicts LangChain reads: it would dump the SDK's models back to dicts, after the SDK built them
(about 0.1 ms a streamed token, twice).
"""

from collections.abc import AsyncIterator
from time import monotonic
from typing import Any

import openai
from openai import AsyncStream

from app.config import Settings

# Sent when no key is configured: OpenAI-compatible local servers ignore it; the client insists on one.
_NO_KEY = "not-needed"
# The header the SDK's own `with_raw_response` sets to get the response object instead of the parsed body.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def build_client(settings: Settings) -> openai.AsyncOpenAI:
    """The process's one client to the model server; the runtime closes it."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else _NO_KEY
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.llm_base_url,
        timeout=settings.llm_request_timeout,
        # Retries connection errors, 408/409/429 and 5xx with exponential backoff.
        max_retries=settings.llm_max_retries,
        # The SDK's aiohttp transport: its HTTP parser is compiled, where httpx's is Python. A streamed
        # reply arrives a token per read, so this is paid per token: about 40 % less CPU per stream.
        http_client=openai.DefaultAioHttpClient(),
    )


class DirectCompletions:
    """Stands in for `client.chat.completions` inside ChatOpenAI.

    `flush_interval` (seconds): streamed text that comes within it of the last text passed on is
    merged into the next chunk (see CoalescedStream); 0 passes every chunk on.
    """

    def __init__(self, client: openai.AsyncOpenAI, flush_interval: float = 0.0) -> None:
        self._client = client
        self._flush_interval = flush_interval
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
        response = await self._client.post(
            "/chat/completions",
            body=payload,
            options=options,  # type: ignore[call-overload]
            # Plain dicts: LangChain reads dicts, and dumps SDK models back to dicts first.
            cast_to=object,
            stream=bool(payload.get("stream")),
            stream_cls=AsyncStream[object],
        )
        if isinstance(response, AsyncStream) and self._flush_interval > 0:
            return CoalescedStream(response, self._flush_interval)
        return response


def _text_of(chunk: Any) -> str | None:
    """The text of a chunk that carries nothing but text, else None (tool calls, the end, usage...)."""
    if not isinstance(chunk, dict) or chunk.get("usage"):
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict) or choice.get("finish_reason") or choice.get("logprobs"):
        return None
    text = delta.get("content")
    if not isinstance(text, str) or not text:
        return None
    if any(value for key, value in delta.items() if key not in ("content", "role")):
        return None
    return text


class CoalescedStream:
    """A model's stream with its text passed on at most once per interval; the first text at once.

    Every chunk costs the same however short its text: the HTTP read, the SDK's parse, LangChain's
    message chunk and callbacks, the graph's stream, and a server-sent event. A fast model sends a
    token every few milliseconds; a reader sees no difference at 30 ms, the server does about a fifth of
    the work. Text that has waited is passed on with the next chunk, and at the latest at the end.
    """

    def __init__(self, stream: AsyncStream[Any], interval: float) -> None:
        self._stream = stream
        self._interval = interval
        self.response = stream.response

    async def __aenter__(self) -> "CoalescedStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stream.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._merged()

    async def _merged(self) -> AsyncIterator[Any]:
        pending: dict[str, Any] | None = None
        sent_at = float("-inf")
        async for chunk in self._stream:
            text = _text_of(chunk)
            if text is None:
                if pending is not None:
                    yield pending
                    pending = None
                yield chunk
                continue
            if pending is None:
                pending = chunk
            else:
                pending["choices"][0]["delta"]["content"] += text
            now = monotonic()
            if now - sent_at >= self._interval:
                yield pending
                pending, sent_at = None, now
        if pending is not None:
            yield pending


class _RawResponse:
    """`with_raw_response.create(...)`: the response object, with `.parse()` and `.headers`."""

    def __init__(self, parent: DirectCompletions) -> None:
        self._parent = parent

    async def create(self, **payload: Any) -> Any:
        headers = {**(payload.pop("extra_headers", None) or {}), _RAW_RESPONSE_HEADER: "true"}
        return await self._parent.create(extra_headers=headers, **payload)
