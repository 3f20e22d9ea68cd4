"""The fake LLM's options for the benchmark: replies of a fixed length, a slower pace on request, a longer
listen queue."""

import http.client
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fake_llm import FakeLLM, shape_reply

LONG = "please tell me about the weather in the hills above the town where my aunt lives these days"


@pytest.fixture
def shaped() -> Iterator[tuple[FakeLLM, httpx.Client]]:
    fake = FakeLLM(latency=0.02, token_delay=0.004, reply_words=6)
    url = fake.start()
    with httpx.Client(base_url=url, timeout=10.0, trust_env=False) as client:
        yield fake, client
    fake.stop()


def _chat(client: httpx.Client, text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": text}], **extra}
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def _stream(client: httpx.Client, text: str) -> str:
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    parts = []
    with client.stream("POST", "/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def test_plain_replies_are_cut_or_padded_to_the_word_count(shaped: tuple[FakeLLM, httpx.Client]) -> None:
    _, client = shaped
    long = _chat(client, LONG)["choices"][0]["message"]["content"]
    short = _chat(client, "hi")["choices"][0]["message"]["content"]
    assert long == "Echo: please tell me about the"
    assert short.startswith("Echo: hi ") and len(short.split()) == 6
    assert _stream(client, "hi") == short  # streamed, the same words
    assert shape_reply("Echo: a", 5) == "Echo: a and so the"  # fixed filler: deterministic


def test_a_plain_reply_takes_as_long_as_its_stream(shaped: tuple[FakeLLM, httpx.Client]) -> None:
    _, client = shaped
    t0 = time.perf_counter()
    _chat(client, LONG)
    plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    _stream(client, LONG)
    streamed = time.perf_counter() - t0
    # 20 ms, then 4 ms for each of 9 chunks (role, 6 words, finish, usage): 56 ms either way.
    assert plain >= 0.056
    assert abs(plain - streamed) < 0.02


def test_a_paced_message_is_answered_that_slowly(shaped: tuple[FakeLLM, httpx.Client]) -> None:
    _, client = shaped
    t0 = time.perf_counter()
    reply = _stream(client, "[pace:30] hi")
    # 20 ms, then 30 ms after each of 9 chunks: 290 ms, where the token delay would give 56 ms.
    assert time.perf_counter() - t0 >= 0.29
    assert reply.startswith("Echo: [pace:30] hi") and len(reply.split()) == 6


def test_extraction_and_tool_replies_are_left_alone(shaped: tuple[FakeLLM, httpx.Client]) -> None:
    _, client = shaped
    prompt = "## New Messages\nuser: [remember:I keep bees on the roof of my flat]\n## Observation Date"
    reply = _chat(client, prompt, response_format={"type": "json_object"})["choices"][0]["message"]
    assert json.loads(reply["content"]) == {"memory": [{"text": "I keep bees on the roof of my flat"}]}
    call = _chat(client, "[calc:2+2]")["choices"][0]["message"]
    assert call["tool_calls"][0]["function"]["name"] == "calculator"


def test_off_by_default() -> None:
    fake = FakeLLM()
    url = fake.start()
    try:
        with httpx.Client(base_url=url, timeout=10.0, trust_env=False) as client:
            assert _chat(client, LONG)["choices"][0]["message"]["content"] == f"Echo: {LONG}"
    finally:
        fake.stop()


def test_a_longer_listen_queue_takes_a_burst_of_new_connections() -> None:
    fake = FakeLLM(latency=0.05)
    url = fake.start(backlog=256)
    try:
        host, port = url.removeprefix("http://").removesuffix("/v1").split(":")

        def one(i: int) -> str:
            conn = http.client.HTTPConnection(host, int(port), timeout=10.0)
            try:
                body = {"model": "fake-model", "messages": [{"role": "user", "content": f"hello {i}"}]}
                conn.request("POST", "/v1/chat/completions", json.dumps(body))
                return str(json.loads(conn.getresponse().read())["choices"][0]["message"]["content"])
            finally:
                conn.close()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=40) as pool:
            replies = list(pool.map(one, range(40)))
        assert replies == [f"Echo: hello {i}" for i in range(40)]
        assert time.perf_counter() - t0 < 0.9  # no connection waited for a dropped SYN to be sent again
    finally:
        fake.stop()
