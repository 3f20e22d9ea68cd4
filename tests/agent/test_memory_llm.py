"""mem0's extraction call on the process's async client: answers from a job thread, never hangs at close."""

import asyncio
import time

import pytest

from app.agent.memory.llm import LoopLLM
from app.agent.openai_client import DirectCompletions, build_client
from tests.conftest import make_settings
from tests.fake_llm import FakeLLM, Fault

_EXTRACTION = [
    {"role": "system", "content": "Extract facts."},
    {"role": "user", "content": "## New Messages\nuser: [remember:Keeps bees]\n## Observation Date\ntoday"},
]


async def test_a_job_thread_gets_the_reply_through_the_event_loop(fake_llm: FakeLLM):
    settings = make_settings("postgresql://unused", fake_llm)
    client = build_client(settings)
    llm = LoopLLM(DirectCompletions(client), asyncio.get_running_loop(), settings)
    try:
        reply = await asyncio.to_thread(
            llm.generate_response, _EXTRACTION, response_format={"type": "json_object"}
        )
    finally:
        llm.close()
        await client.close()
    assert reply == '{"memory": [{"text": "Keeps bees"}]}'
    request = fake_llm.extraction_requests[-1]
    assert request["model"] == "fake-model" and request["temperature"] == 0.0


async def test_close_releases_a_thread_waiting_on_the_model(fake_llm: FakeLLM):
    settings = make_settings("postgresql://unused", fake_llm)
    client = build_client(settings)
    llm = LoopLLM(DirectCompletions(client), asyncio.get_running_loop(), settings)
    fake_llm.script_extraction(Fault(delay=10.0))
    waiting = asyncio.create_task(
        asyncio.to_thread(llm.generate_response, _EXTRACTION, response_format={"type": "json_object"})
    )
    await asyncio.sleep(0.3)  # the call is in flight on the loop
    started = time.monotonic()
    llm.close()
    with pytest.raises(asyncio.CancelledError):  # the thread's concurrent CancelledError, converted
        await waiting
    assert time.monotonic() - started < 2.0
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate_response(_EXTRACTION)
    await client.close()
