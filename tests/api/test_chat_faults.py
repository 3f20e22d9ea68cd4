"""LLM faults injected through the fake server end in a reply or a typed error.

Never a 500, a hang or a broken history.
"""

import asyncio
import time

import httpx
from sqlalchemy import text

from tests.conftest import asgi_client, auth, make_settings, new_session, register, running_app, serve
from tests.fake_llm import Fault


async def _chat(client, user, sid, message):
    return await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))


async def test_transient_500s_and_429s_succeed_on_retry(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.script(Fault(status=500), Fault(status=429, retry_after="0"))
    r = await _chat(client, user, sid, "still there?")
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == "Echo: still there?"
    assert len(fake_llm.chat_requests) == 3


async def test_persistent_failure_is_typed_and_history_stays_clean(client, user, fake_llm):
    sid = await new_session(client, user)
    assert (await _chat(client, user, sid, "first")).status_code == 200
    fake_llm.script(*[Fault(status=500)] * 3)
    r = await _chat(client, user, sid, "lost message")
    assert r.status_code == 503
    assert r.json()["error"] == "llm_unavailable"

    r = await _chat(client, user, sid, "second")
    assert r.status_code == 200, r.text
    sent = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
    assert sent == ["first", "Echo: first", "second"]
    transcript = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert [m["content"] for m in transcript["items"]] == ["first", "Echo: first", "second", "Echo: second"]


async def test_failure_after_a_tool_call_does_not_leave_a_dangling_call(client, user, fake_llm):
    sid = await new_session(client, user)
    # First model call asks for the tool; the follow-up call fails on every retry.
    fake_llm.script(Fault(), *[Fault(status=500)] * 3)
    r = await _chat(client, user, sid, "[calc:1+1]")
    assert r.status_code == 503
    r = await _chat(client, user, sid, "hello")
    assert r.status_code == 200, r.text
    roles = [m["role"] for m in fake_llm.chat_requests[-1]["messages"]]
    assert roles == ["system", "user"]


async def test_first_turn_failure_leaves_nothing_behind(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.script(*[Fault(status=500)] * 3)
    assert (await _chat(client, user, sid, "doomed")).status_code == 503
    assert (await _chat(client, user, sid, "fresh")).status_code == 200
    roles = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
    assert roles == ["fresh"]


async def test_request_timeout_is_a_504(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, llm_request_timeout=0.3, llm_max_retries=0)
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        fake_llm.script(Fault(delay=1.0))
        started = time.monotonic()
        r = await _chat(client, user, sid, "slow")
        assert r.status_code == 504
        assert r.json()["error"] == "llm_timeout"
        assert time.monotonic() - started < 1.0
        assert (await _chat(client, user, sid, "fast")).status_code == 200


async def test_total_timeout_bounds_the_turn(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, llm_request_timeout=10, llm_total_timeout=0.5)
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        fake_llm.script(Fault(delay=2.0))
        started = time.monotonic()
        r = await _chat(client, user, sid, "slow")
        assert r.status_code == 504
        assert time.monotonic() - started < 1.5


async def test_fallback_model_takes_over_with_its_tools(pg_url, fake_llm):
    settings = make_settings(
        pg_url, fake_llm, llm_model="broken-primary", llm_fallback_models=["fake-model"], llm_max_retries=0
    )
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        r = await _chat(client, user, sid, "[calc:2+3]")
        assert r.status_code == 200, r.text
        assert r.json()["reply"] == "The tool said: 5"
        fallback_calls = [q for q in fake_llm.chat_requests if q["model"] == "fake-model"]
        assert fallback_calls and all(q.get("tools") for q in fallback_calls)
        # The next turn tries the primary first again: a fallback is per call, not sticky.
        fake_llm.requests.clear()
        assert (await _chat(client, user, sid, "again")).status_code == 200
        assert [q["model"] for q in fake_llm.chat_requests] == ["broken-primary", "fake-model"]


async def test_second_message_while_answering_gets_409(client, user, fake_llm):
    sid = await new_session(client, user)
    other = await new_session(client, user)
    fake_llm.script(Fault(delay=0.8))
    first = asyncio.create_task(_chat(client, user, sid, "slow one"))
    for _ in range(200):
        if fake_llm.chat_requests:
            break
        await asyncio.sleep(0.01)
    busy = await _chat(client, user, sid, "impatient")
    assert busy.status_code == 409
    assert busy.json()["error"] == "thread_busy"
    # Another session of the same user is not blocked.
    assert (await _chat(client, user, other, "elsewhere")).status_code == 200
    assert (await first).status_code == 200
    assert (await _chat(client, user, sid, "now")).status_code == 200
    transcript = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert [m["content"] for m in transcript["items"] if m["role"] == "user"] == ["slow one", "now"]


async def test_delete_while_answering_is_refused(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.script(Fault(delay=0.5))
    first = asyncio.create_task(_chat(client, user, sid, "slow"))
    for _ in range(200):
        if fake_llm.chat_requests:
            break
        await asyncio.sleep(0.01)
    r = await client.delete(f"/api/v1/sessions/{sid}", headers=auth(user))
    assert r.status_code == 409
    assert (await first).status_code == 200
    assert (await client.delete(f"/api/v1/sessions/{sid}", headers=auth(user))).status_code == 204


# --- what a failed or cancelled turn leaves in LangGraph's tables: nothing

_CHECKPOINT_ROWS = {
    "checkpoints": "checkpoint_ns, checkpoint_id",
    "checkpoint_blobs": "checkpoint_ns, channel, version",
    "checkpoint_writes": "checkpoint_ns, checkpoint_id, task_id, idx",
}


async def _checkpoint_rows(app, sid: str) -> dict[str, set[tuple]]:
    """The thread's rows in each checkpoint table, by key."""
    async with app.state.runtime.db.engine.connect() as conn:
        thread_id = (
            await conn.execute(text("SELECT id FROM thread WHERE session_id = :s"), {"s": sid})
        ).scalar_one()
        return {
            table: {
                tuple(row)
                for row in await conn.execute(
                    text(f"SELECT {key} FROM {table} WHERE thread_id = :t"),
                    {"t": str(thread_id)},
                )
            }
            for table, key in _CHECKPOINT_ROWS.items()
        }


async def _released(app, sid: str) -> None:
    """Wait until the cancelled run gave its lease back (and dropped what it wrote, in that transaction)."""
    for _ in range(100):
        async with app.state.runtime.db.engine.connect() as conn:
            run_id = (
                await conn.execute(text("SELECT run_id FROM thread WHERE session_id = :s"), {"s": sid})
            ).scalar_one()
        if run_id is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cancelled turn still holds its lease")


async def _cancelled_stream(app, user, sid: str, message: str, *, leave_after: str) -> None:
    """A streamed turn whose client hangs up after the first event named `leave_after`."""
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", f"/api/v1/sessions/{sid}/chat/stream", json={"message": message}, headers=auth(user)
        ) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line == f"event: {leave_after}":
                break


async def test_failed_and_cancelled_turns_leave_exactly_the_last_completed_turns_checkpoints(
    app, client, user, fake_llm
):
    sid = await new_session(client, user)
    assert (await _chat(client, user, sid, "[calc:1+1]")).status_code == 200
    assert (await _chat(client, user, sid, "a")).status_code == 200
    completed = await _checkpoint_rows(app, sid)
    assert completed["checkpoints"] and completed["checkpoint_blobs"]

    fake_llm.script(*[Fault(status=500)] * 3)  # the model fails on every retry
    assert (await _chat(client, user, sid, "lost")).status_code == 503
    assert await _checkpoint_rows(app, sid) == completed

    fake_llm.script(Fault(), *[Fault(status=500)] * 3)  # a tool call, then the follow-up fails
    assert (await _chat(client, user, sid, "[calc:2*2]")).status_code == 503
    assert await _checkpoint_rows(app, sid) == completed

    fake_llm.token_delay = 0.2
    await _cancelled_stream(app, user, sid, " ".join(f"w{i}" for i in range(30)), leave_after="token")
    await _released(app, sid)
    assert await _checkpoint_rows(app, sid) == completed

    # Hung up while the model answers the tool's result, after a step that gave channels new versions.
    await _cancelled_stream(
        app, user, sid, "[calc:3*3] " + " ".join(f"w{i}" for i in range(30)), leave_after="tool"
    )
    await _released(app, sid)
    assert await _checkpoint_rows(app, sid) == completed

    # The next completed turn replaces them: a thread keeps its latest checkpoint and the one that
    # turn started from (the last completed turn's, kept to replace the latest turn from).
    fake_llm.token_delay = 0
    assert (await _chat(client, user, sid, "b")).status_code == 200
    after = await _checkpoint_rows(app, sid)
    assert len(after["checkpoints"]) == 2 and max(completed["checkpoints"]) in after["checkpoints"]
    transcript = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert [m["content"] for m in transcript["items"] if m["role"] == "user"] == ["[calc:1+1]", "a", "b"]
