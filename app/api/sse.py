"""Server-sent events that stop the producer as soon as the client goes away."""

import json
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


def sse_event(event: str, data: Any, *, event_id: int | None = None) -> str:
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class EventStreamResponse(StreamingResponse):
    """Always watches for `http.disconnect` and cancels the stream when it comes.

    Starlette skips the watcher on ASGI 2.4 servers and only notices a gone client at the next
    write; a turn waiting on the model would run on for nothing. Cancelling here cancels the LLM call.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[str],
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await self.listen_for_disconnect(receive)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:
                pass
            finally:
                with anyio.CancelScope(shield=True):
                    close = getattr(self.body_iterator, "aclose", None)
                    if close is not None:
                        await close()
                    if self._on_close is not None:
                        await self._on_close()
                tg.cancel_scope.cancel()
