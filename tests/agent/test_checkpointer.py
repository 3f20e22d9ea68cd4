"""The checkpoint read cache returns exactly what PostgreSQL holds, and the service works without it."""

from langchain_core.messages import messages_to_dict
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from sqlalchemy import text

from tests.conftest import (
    asgi_client,
    auth,
    make_settings,
    new_session,
    register,
    register_admin,
    running_app,
)


async def _pointer(app, sid: str) -> tuple[str, str]:
    async with app.state.runtime.db.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT id, checkpoint_id FROM thread WHERE session_id = :s"), {"s": sid})
        ).one()
    return str(row[0]), row[1]


def _comparable(tup):
    values = tup.checkpoint["channel_values"]
    return {
        "config": tup.config["configurable"],
        "parent": tup.parent_config["configurable"] if tup.parent_config else None,
        "versions": tup.checkpoint["channel_versions"],
        "messages": messages_to_dict(values["messages"]),
        "channels": sorted(values),
        "step": tup.metadata["step"],
        "source": tup.metadata["source"],
        "pending": list(tup.pending_writes or []),
    }


async def test_cached_checkpoint_equals_the_stored_one(app, client, user):
    sid = await new_session(client, user)
    for message in ("hello", "[calc:3*3]", "bye"):
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
        assert r.status_code == 200
    thread_id, checkpoint_id = await _pointer(app, sid)
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    saver = app.state.runtime.graph.checkpointer
    assert saver._cache.get((thread_id, "", checkpoint_id)) is not None
    cached = await saver.aget_tuple(config)
    stored = await AsyncPostgresSaver(saver.conn).aget_tuple(config)
    assert _comparable(cached) == _comparable(stored)


async def test_conversation_continues_with_the_cache_off(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, checkpoint_cache_size=0)
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        sid = await new_session(client, user)
        for message in ("one", "two"):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user)
            )
            assert r.status_code == 200
        assert not app.state.runtime.graph.checkpointer._cache
        sent = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
        assert sent == ["one", "Echo: one", "two"]


async def test_deleting_a_session_or_an_account_empties_the_cache_of_its_threads(app, client, user):
    saver = app.state.runtime.graph.checkpointer

    def cached(thread_id: str) -> list:
        return [key for key in saver._cache if key[0] == thread_id]

    async def chat(sid: str) -> None:
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
        assert r.status_code == 200

    first, second = await new_session(client, user), await new_session(client, user)
    threads = {}
    for sid in (first, second):
        await chat(sid)
        threads[sid] = (await _pointer(app, sid))[0]
        assert cached(threads[sid])
    assert (await client.delete(f"/api/v1/sessions/{first}", headers=auth(user))).status_code == 204
    assert cached(threads[first]) == [] and cached(threads[second])
    # Clearing a session's messages forgets its agent state here too; the session goes on.
    assert (await client.delete(f"/api/v1/sessions/{second}/messages", headers=auth(user))).status_code == 204
    assert cached(threads[second]) == []
    await chat(second)
    assert cached(threads[second])
    assert (await client.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
    assert cached(threads[second]) == []


async def test_an_admin_deleting_a_user_empties_the_cache_of_their_threads(app, client, user):
    saver = app.state.runtime.graph.checkpointer
    sid = await new_session(client, user)
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
    assert r.status_code == 200
    thread_id = (await _pointer(app, sid))[0]
    assert [key for key in saver._cache if key[0] == thread_id]
    admin = await register_admin(app, client)
    user_id = (await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"]
    assert (await client.delete(f"/api/v1/admin/users/{user_id}", headers=auth(admin))).status_code == 204
    assert [key for key in saver._cache if key[0] == thread_id] == []
