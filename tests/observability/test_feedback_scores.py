"""Feedback reaches Langfuse as a score on the trace of the turn it rates."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.api.test_stream import stream_chat
from tests.conftest import asgi_client, auth, new_session, register, running_app
from tests.observability.otlp import OtlpReceiver
from tests.observability.test_tracing import flush, traces_of, tracing_settings, user_id_of


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
async def traced_app(pg_url, fake_llm, receiver) -> AsyncIterator[FastAPI]:
    async with running_app(tracing_settings(pg_url, fake_llm, receiver.url)) as app:
        yield app


async def stored_trace_ids(app: FastAPI, sid: str) -> list[str | None]:
    async with app.state.runtime.db.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT m.trace_id FROM message m JOIN thread t ON t.id = m.thread_id"
                " WHERE t.session_id = :s ORDER BY m.id"
            ),
            {"s": sid},
        )
        return list(result.scalars())


async def send_scores(app: FastAPI) -> None:
    await asyncio.to_thread(app.state.runtime.tracing.client.flush)


async def test_a_rating_scores_the_trace_of_its_turn(traced_app, receiver):
    async with asgi_client(traced_app) as client:
        user = await register(client)
        user_id = await user_id_of(client, user)
        sid = await new_session(client, user)
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "rate me"}, headers=auth(user))
        assert r.status_code == 200, r.text
        reply = r.json()["message_id"]
        await stream_chat(traced_app, user, sid, "and me, streamed")
        await flush(traced_app)

        traces = traces_of(receiver, user_id)
        assert len(traces) == 2
        stored = await stored_trace_ids(traced_app, sid)
        # Each reply keeps its own turn's trace; the user's messages have none.
        assert stored[0] is None and stored[2] is None
        assert {stored[1], stored[3]} == set(traces)

        feedback = f"/api/v1/sessions/{sid}/messages/{reply}/feedback"
        r = await client.put(feedback, json={"rating": "down", "comment": "too short"}, headers=auth(user))
        assert r.status_code == 200, r.text
        await send_scores(traced_app)
        [score] = [s for s in receiver.scores if s.get("traceId") == stored[1]]
        assert (score["name"], score["value"], score["comment"]) == ("user_feedback", 0, "too short")

        # A changed rating is sent under the same score id: Langfuse replaces the score.
        r = await client.put(feedback, json={"rating": "up"}, headers=auth(user))
        assert r.status_code == 200, r.text
        await send_scores(traced_app)
        first, second = [s for s in receiver.scores if s.get("traceId") == stored[1]]
        assert second["id"] == first["id"] and second["value"] == 1 and second.get("comment") is None
    # The handler forgets each turn's trace once the turn took it.
    assert traced_app.state.runtime.tracing.handler._trace_ids == {}
