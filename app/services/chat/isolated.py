"""Drive an async iterator in a task of its own, so cancelling the consumer cancels it cleanly.

Starlette/anyio cancel scopes re-cancel every await in a cancelled task. LangGraph's stream needs
several awaits to cancel its node tasks on the way out, and under a re-cancelling scope it gives up
half-way: the node, and the LLM's HTTP connection, would run on in the background. A plain task,
cancelled once and awaited from a shielded scope, unwinds completely.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

_ITEM, _END, _ERROR = object(), object(), object()


async def in_own_task(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    queue: asyncio.Queue[tuple[object, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait((_ITEM, item))
        except BaseException as exc:
            # Also a cancellation raised inside the source: the consumer must not wait for ever.
            queue.put_nowait((_ERROR, exc))
            raise
        else:
            queue.put_nowait((_END, None))

    task = asyncio.create_task(pump())
    try:
        while True:
            kind, value = await queue.get()
            if kind is _ITEM:
                yield value
            elif kind is _END:
                return
            elif isinstance(value, asyncio.CancelledError):
                # The producer was cancelled from inside, not us: surface it as a failure.
                raise RuntimeError("the stream's producer was cancelled") from value
            else:
                raise value
    finally:
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
