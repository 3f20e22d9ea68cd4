"""in_own_task: items pass through, errors surface, and closing the consumer stops the producer."""

import asyncio

import pytest

from app.services.chat.isolated import in_own_task


async def _numbers(n: int, started: asyncio.Event | None = None, stopped: list[str] | None = None):
    try:
        for i in range(n):
            if started is not None:
                started.set()
            yield i
            await asyncio.sleep(0.01)
    finally:
        if stopped is not None:
            stopped.append("closed")


async def test_items_arrive_in_order():
    assert [x async for x in in_own_task(_numbers(5))] == [0, 1, 2, 3, 4]


async def test_producer_errors_reach_the_consumer():
    async def failing():
        yield 1
        raise ValueError("boom")

    stream = in_own_task(failing())
    assert await anext(stream) == 1
    with pytest.raises(ValueError, match="boom"):
        await anext(stream)


async def test_a_cancellation_inside_the_producer_is_a_failure_not_a_hang():
    async def cancelled_inside():
        yield 1
        raise asyncio.CancelledError

    stream = in_own_task(cancelled_inside())
    assert await anext(stream) == 1
    with pytest.raises(RuntimeError, match="cancelled"):
        await asyncio.wait_for(anext(stream), 2)


async def test_closing_the_consumer_stops_the_producer():
    stopped: list[str] = []
    stream = in_own_task(_numbers(10_000, stopped=stopped))
    assert await anext(stream) == 0
    await stream.aclose()
    assert stopped == ["closed"]


async def test_cancelling_the_consumer_task_stops_the_producer():
    stopped: list[str] = []
    started = asyncio.Event()

    async def consume():
        async for _ in in_own_task(_numbers(10_000, started, stopped)):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stopped == ["closed"]
