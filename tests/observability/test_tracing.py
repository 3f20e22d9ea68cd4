"""Langfuse tracing against a loopback OTLP receiver: one trace per turn, a span per node, nothing shared."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import load_settings
from app.observability.tracing import tracing_configured
from tests.conftest import (
    asgi_client,
    auth,
    free_port,
    make_settings,
    new_session,
    register,
    running_app,
    serve,
)
from tests.observability.otlp import OtlpReceiver, Span

NODES = ("recall", "agent", "tools")
ROOT = Path(__file__).resolve().parents[2]


def tracing_settings(pg_url: str, fake_llm: Any, host: str, **overrides: Any) -> Any:
    # A key of its own per app: the SDK keeps one exporter per public key and process.
    return make_settings(
        pg_url,
        fake_llm,
        langfuse_public_key=f"pk-lf-{uuid.uuid4().hex[:12]}",
        langfuse_secret_key="sk-lf-test",
        LANGFUSE_HOST=host,
        **overrides,
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
async def traced_app(pg_url, fake_llm, receiver) -> AsyncIterator[FastAPI]:
    async with running_app(tracing_settings(pg_url, fake_llm, receiver.url)) as app:
        yield app


async def flush(app: FastAPI) -> None:
    assert await asyncio.to_thread(app.state.runtime.tracing.flush)


def traces_of(receiver: OtlpReceiver, user_id: str) -> dict[str, list[Span]]:
    """The traces whose root names this user."""
    return {
        trace_id: spans
        for trace_id, spans in receiver.traces().items()
        if any(s.parent_id is None and s.attributes.get("user.id") == user_id for s in spans)
    }


async def user_id_of(client: httpx.AsyncClient, user: dict[str, str]) -> str:
    return str((await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"])


def check_turn(spans: list[Span], *, user_id: str, session_id: str) -> None:
    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.attributes["langfuse.trace.name"] == "chat.turn"
    assert (root.attributes["user.id"], root.attributes["session.id"]) == (user_id, session_id)
    assert {"env:test", "release:0.1.0"} <= set(root.attributes["langfuse.trace.tags"])
    assert root.attributes["langfuse.environment"] == "test"
    children = sorted((s for s in spans if s.parent_id == root.span_id), key=lambda s: s.start_ns)
    nodes = [s.name for s in children if s.name in NODES]
    assert nodes == ["recall", "agent", "tools", "agent"], [s.name for s in children]
    generations = [s for s in spans if s.kind == "generation"]
    assert len(generations) == 2
    for generation in generations:
        assert by_id[generation.parent_id].name == "agent"  # type: ignore[index]
        assert generation.attributes["langfuse.observation.model.name"] == "fake-model"
        usage = generation.json_attribute("langfuse.observation.usage_details")
        assert usage["input"] > 0 and usage["output"] > 0
    (tool,) = [s for s in spans if s.kind == "tool"]
    assert (tool.name, by_id[tool.parent_id].name) == ("calculator", "tools")  # type: ignore[index]


async def test_a_turn_is_one_trace_with_a_span_per_node_and_generations_under_the_agent(traced_app, receiver):
    async with asgi_client(traced_app) as client:
        user = await register(client)
        user_id = await user_id_of(client, user)
        sid = await new_session(client, user)
        for _ in range(2):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": "[calc:2+3]"}, headers=auth(user)
            )
            assert r.status_code == 200, r.text
    await flush(traced_app)
    traces = traces_of(receiver, user_id)
    assert len(traces) == 2, "one trace per turn"
    for spans in traces.values():
        check_turn(spans, user_id=user_id, session_id=sid)
    assert any(a.startswith("Basic ") for a in receiver.authorizations)
    tracing = traced_app.state.runtime.tracing
    assert traced_app.state.runtime.callbacks[-1] is tracing.handler  # built once, not per turn


async def test_a_streamed_turn_still_streams_and_is_traced(traced_app, receiver, fake_llm):
    async with asgi_client(traced_app) as client:
        user = await register(client)
        user_id = await user_id_of(client, user)
        sid = await new_session(client, user)
    # Tokens further apart than STREAM_FLUSH_MS (30), so that each is its own event even on a busy machine.
    fake_llm.token_delay = 0.08
    arrivals: list[float] = []
    async with (
        serve(traced_app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": "[calc:2+3]"}, headers=auth(user)
        ) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                arrivals.append(time.perf_counter())
                if line == "event: done":
                    break
    # "The tool said: 5" comes as 4 token events spread over the model's token delays, not in one lump.
    assert len(arrivals) >= 6
    assert arrivals[-2] - arrivals[1] > 0.05
    await flush(traced_app)
    (spans,) = traces_of(receiver, user_id).values()
    check_turn(spans, user_id=user_id, session_id=sid)
    streamed = [s for s in spans if s.kind == "generation" and "completion_start_time" in str(s.attributes)]
    assert streamed, "time to first token is recorded on streamed generations"


async def test_a_client_that_leaves_mid_stream_leaves_no_open_observation(traced_app, receiver, fake_llm):
    async with asgi_client(traced_app) as client:
        user = await register(client)
        user_id = await user_id_of(client, user)
        sid = await new_session(client, user)
    fake_llm.token_delay = 0.2
    async with serve(traced_app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": "a b c d e"}, headers=auth(user)
        ) as r:
            async for line in r.aiter_lines():
                if line == "event: token":
                    break  # leave while the model is still streaming
        handler = traced_app.state.runtime.tracing.handler
        for _ in range(100):
            if not handler._runs and not handler.open_calls:
                break
            await asyncio.sleep(0.05)
    # The SDK's own table of open observations: without the fix it kept the generation for good.
    assert handler._runs == {} and handler.open_calls == 0
    await flush(traced_app)
    (spans,) = traces_of(receiver, user_id).values()
    (generation,) = [s for s in spans if s.kind == "generation"]
    assert generation.attributes["langfuse.observation.level"] == "ERROR"
    assert "cancelled" in generation.attributes["langfuse.observation.status_message"]


async def test_two_users_traces_stay_apart(traced_app, receiver):
    async with asgi_client(traced_app) as client:
        users = [await register(client) for _ in range(2)]
        ids = [await user_id_of(client, u) for u in users]
        sessions = [await new_session(client, u) for u in users]
        words = [f"secret{uuid.uuid4().hex[:8]}" for _ in users]
        replies = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/sessions/{sid}/chat", json={"message": f"{word} [calc:1+1]"}, headers=auth(u)
                )
                for u, sid, word in zip(users, sessions, words, strict=True)
            )
        )
        assert [r.status_code for r in replies] == [200, 200]
    await flush(traced_app)
    for me, other in ((0, 1), (1, 0)):
        (spans,) = traces_of(receiver, ids[me]).values()
        check_turn(spans, user_id=ids[me], session_id=sessions[me])
        text = str([s.attributes for s in spans])
        assert words[me] in text
        assert words[other] not in text and ids[other] not in text and sessions[other] not in text


async def test_without_keys_nothing_is_built(app):
    assert app.state.runtime.tracing is None
    assert [type(h).__name__ for h in app.state.runtime.callbacks] == ["MetricsCallbackHandler"]


@pytest.mark.parametrize(
    ("overrides", "on"),
    [
        ({}, False),
        ({"langfuse_public_key": "pk"}, False),
        ({"langfuse_secret_key": "sk"}, False),
        ({"langfuse_public_key": "", "langfuse_secret_key": ""}, False),
        (
            {"langfuse_public_key": "pk", "langfuse_secret_key": "sk", "langfuse_tracing_enabled": False},
            False,
        ),
        ({"langfuse_public_key": "pk", "langfuse_secret_key": "sk"}, True),
    ],
)
def test_tracing_needs_both_keys_and_not_switched_off(overrides, on):
    assert tracing_configured(load_settings(**overrides)) is on


def test_without_keys_the_sdk_is_not_even_imported():
    code = (
        "import sys\n"
        "from app.config import load_settings\n"
        "from app.observability.tracing import open_tracing\n"
        "assert open_tracing(load_settings()) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('langfuse')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "APP_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "langfuse" not in done.stderr.lower()


@pytest.mark.parametrize("kind", ["closed port", "never answers"])
async def test_a_langfuse_that_is_down_neither_slows_nor_breaks_a_chat(pg_url, fake_llm, kind):
    with hanging_listener() if kind == "never answers" else _closed() as port:
        settings = tracing_settings(
            pg_url,
            fake_llm,
            f"http://127.0.0.1:{port}",
            langfuse_timeout=1,
            langfuse_flush_interval=0.05,  # exports run while the turns do
            memory_enabled=False,
        )
        started = time.perf_counter()
        async with running_app(settings) as app, asgi_client(app) as client:
            user = await register(client)
            sid = await new_session(client, user)
            timings = []
            for _ in range(4):
                t0 = time.perf_counter()
                r = await client.post(
                    f"/api/v1/sessions/{sid}/chat", json={"message": "[calc:2+3]"}, headers=auth(user)
                )
                timings.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.1)  # let an export start and hang
            closing = time.perf_counter()
        # A turn here takes tens of milliseconds; an export blocking one would add a second or more.
        assert sorted(timings)[1] < 0.5, timings
        assert time.perf_counter() - closing < 2 * 1 + 2, "the shutdown flush is bounded"
        assert time.perf_counter() - started < 20


class _closed:
    def __enter__(self) -> int:
        return free_port()  # bound and released: nothing listens there

    def __exit__(self, *exc: object) -> None:
        pass


class hanging_listener:
    """Accepts connections (the kernel does) and never reads or answers."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
