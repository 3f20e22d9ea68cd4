"""The checkpointed history stays bounded; the transcript keeps everything."""

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from sqlalchemy import text

from app.agent.history import removals, window_start
from tests.conftest import asgi_client, auth, make_settings, new_session, register, running_app


def _turns(n: int) -> list:
    out = []
    for i in range(n):
        out += [HumanMessage(f"q{i}", id=f"h{i}"), AIMessage(f"a{i}", id=f"a{i}")]
    return out


def test_window_keeps_whole_recent_turns():
    msgs = _turns(5)
    assert window_start(msgs, max_messages=4, max_chars=10_000) == 6
    assert window_start(msgs, max_messages=5, max_chars=10_000) == 6  # never starts on an assistant reply
    assert window_start(msgs, max_messages=100, max_chars=10_000) == 0


def test_window_respects_the_character_budget():
    msgs = [HumanMessage("x" * 500, id="1"), AIMessage("y" * 500, id="2"), HumanMessage("short", id="3")]
    assert window_start(msgs, max_messages=10, max_chars=600) == 2


def test_latest_user_message_is_kept_even_over_budget():
    msgs = [*_turns(2), HumanMessage("z" * 5000, id="big")]
    assert window_start(msgs, max_messages=10, max_chars=100) == 4


def test_window_never_starts_on_a_tool_result():
    msgs = [
        HumanMessage("calc", id="h0"),
        AIMessage("", id="a0", tool_calls=[{"name": "calculator", "args": {}, "id": "c1"}]),
        ToolMessage("2", tool_call_id="c1", id="t0"),
        AIMessage("two", id="a1"),
        HumanMessage("next", id="h1"),
    ]
    start = window_start(msgs, max_messages=3, max_chars=10_000)
    assert isinstance(msgs[start], HumanMessage)
    assert [r.id for r in removals(msgs, max_messages=3, max_chars=10_000)] == ["h0", "a0", "t0", "a1"]
    assert all(isinstance(r, RemoveMessage) for r in removals(msgs, max_messages=3, max_chars=10_000))


async def _latest_messages_blob_size(app, sid: str) -> int:
    async with app.state.runtime.db.engine.connect() as conn:
        thread_id = (
            await conn.execute(text("SELECT id FROM thread WHERE session_id = :s"), {"s": sid})
        ).scalar_one()
        size = await conn.execute(
            text(
                "SELECT length(b.blob) FROM checkpoints c JOIN checkpoint_blobs b"
                " ON b.thread_id = c.thread_id AND b.channel = 'messages'"
                " AND b.version = c.checkpoint->'channel_versions'->>'messages'"
                " WHERE c.thread_id = :t ORDER BY c.checkpoint_id DESC LIMIT 1"
            ),
            {"t": str(thread_id)},
        )
        return int(size.scalar_one())


async def test_long_conversation_keeps_model_context_and_checkpoint_bounded(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, history_max_messages=6)
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        sizes = {}
        for i in range(16):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": f"message number {i}"}, headers=auth(user)
            )
            assert r.status_code == 200
            if i in (4, 15):
                sizes[i] = await _latest_messages_blob_size(app, sid)
        sent = [m for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
        assert len(sent) <= 6
        assert sent[-1]["content"] == "message number 15"
        assert sizes[15] <= sizes[4] * 1.1
        transcript = (
            await client.get(f"/api/v1/sessions/{sid}/messages?limit=100", headers=auth(user))
        ).json()
        assert transcript["total"] == 32


async def test_storage_per_thread_stays_bounded(app, client, user):
    sid = await new_session(client, user)
    for i in range(6):
        message = "[calc:2+2]" if i == 3 else f"turn {i}"
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
        assert r.status_code == 200
    async with app.state.runtime.db.engine.connect() as conn:
        thread_id, pointer = (
            await conn.execute(text("SELECT id, checkpoint_id FROM thread WHERE session_id = :s"), {"s": sid})
        ).one()
        rows = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = :t),"
                    " (SELECT count(*) FROM checkpoint_writes WHERE thread_id = :t),"
                    " (SELECT count(*) FROM checkpoint_blobs b WHERE thread_id = :t AND NOT EXISTS ("
                    "   SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id"
                    "   AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version))"
                ),
                {"t": str(thread_id)},
            )
        ).one()
    # Two checkpoints are left: the pointer, and the one its turn started from (to replace that turn).
    assert tuple(rows) == (2, 0, 0)
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "again"}, headers=auth(user))
    assert r.status_code == 200
    assert pointer is not None
