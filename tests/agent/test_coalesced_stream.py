"""Streamed text passed on at most once per interval: nothing lost, nothing reordered, the first at once."""

import asyncio
from typing import Any

from app.agent.openai_client import CoalescedStream, DirectCompletions, build_client
from tests.conftest import make_settings
from tests.fake_llm import FakeLLM


def _text(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


class _Stream:
    """Stands in for the SDK's AsyncStream: the chunks, each after its delay."""

    def __init__(self, chunks: list[tuple[float, dict[str, Any]]]) -> None:
        self.chunks = chunks
        self.response = None
        self.closed = False

    async def __aiter__(self) -> Any:
        for delay, chunk in self.chunks:
            await asyncio.sleep(delay)
            yield chunk

    async def close(self) -> None:
        self.closed = True


async def _collect(chunks: list[tuple[float, dict[str, Any]]], interval: float) -> list[dict[str, Any]]:
    stream = _Stream(chunks)
    async with CoalescedStream(stream, interval) as coalesced:  # type: ignore[arg-type]
        out = [chunk async for chunk in coalesced]
    assert stream.closed
    return out


def _contents(chunks: list[dict[str, Any]]) -> list[str | None]:
    return [c["choices"][0]["delta"].get("content") if c.get("choices") else None for c in chunks]


async def test_text_within_the_interval_is_merged_and_the_first_text_goes_at_once():
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    words = [(0.0, _text(w)) for w in ("Echo:", " a", " b", " c", " d")]
    out = await _collect([(0.0, role), *words, (0.0, end), (0.0, usage)], interval=10.0)
    # The role chunk passes as it is; "Echo:" goes at once; the rest waits and is flushed before the end.
    assert _contents(out) == ["", "Echo:", " a b c d", None, None]
    assert out[-2] == end and out[-1] == usage


async def test_a_tool_call_chunk_flushes_the_text_before_it_in_order():
    call = {
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1"}]}, "finish_reason": None}]
    }
    out = await _collect([(0.0, _text("a")), (0.0, _text("b")), (0.0, call), (0.0, _text("c"))], 10.0)
    assert _contents(out) == ["a", "b", None, "c"]
    assert out[2] == call


async def test_text_slower_than_the_interval_passes_chunk_by_chunk():
    out = await _collect([(0.03, _text(w)) for w in ("a", "b", "c")], interval=0.01)
    assert _contents(out) == ["a", "b", "c"]


async def test_streams_through_the_model_client_arrive_whole(fake_llm: FakeLLM):
    """Against the fake server, with and without merging: the same text, fewer chunks when merged."""
    settings = make_settings("postgresql://unused", fake_llm)
    message = "one two three four five six seven eight nine ten"
    payload: dict[str, Any] = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": message}],
        "stream": True,
    }
    fake_llm.token_delay = 0.002
    client = build_client(settings)
    try:
        texts, counts = [], []
        for interval in (0.0, 1.0):
            stream = await DirectCompletions(client, interval).create(**payload)
            chunks = [c async for c in stream]
            texts.append("".join(c or "" for c in _contents(chunks)))
            counts.append(sum(1 for c in _contents(chunks) if c))
    finally:
        fake_llm.token_delay = 0.0
        await client.close()
    assert texts == [f"Echo: {message}"] * 2
    assert counts[0] == 11 and counts[1] == 2  # every word, then the first word and the rest
