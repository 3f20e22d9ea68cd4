"""The run lease: across app instances, after a crash, and with checkpoints from failed runs."""

import asyncio

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from sqlalchemy import text

from tests.conftest import asgi_client, auth, new_session, register, running_app
from tests.fake_llm import Fault


async def _wait_for_llm_call(fake_llm) -> None:
    for _ in range(300):
        if fake_llm.chat_requests:
            return
        await asyncio.sleep(0.01)


async def test_second_instance_sees_the_lease(app, client, settings, fake_llm):
    # Two app instances on one database stand for two workers or replicas.
    user = await register(client)
    sid = await new_session(client, user)
    async with running_app(settings) as other_app, asgi_client(other_app) as other:
        fake_llm.script(Fault(delay=0.8))
        first = asyncio.create_task(
            client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "slow"}, headers=auth(user))
        )
        await _wait_for_llm_call(fake_llm)
        r = await other.post(f"/api/v1/sessions/{sid}/chat", json={"message": "other"}, headers=auth(user))
        assert r.status_code == 409
        assert (await first).status_code == 200
        r = await other.post(f"/api/v1/sessions/{sid}/chat", json={"message": "then"}, headers=auth(user))
        assert r.status_code == 200
        sent = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
        assert sent == ["slow", "Echo: slow", "then"]


async def test_a_stale_lease_from_a_dead_process_is_taken_over(app, client, user):
    sid = await new_session(client, user)
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE thread SET run_id = gen_random_uuid(), lease_expires_at = now() - interval '1 second'"
                " WHERE session_id = :s"
            ),
            {"s": sid},
        )
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
    assert r.status_code == 200


async def test_a_fresh_lease_is_respected(app, client, user):
    sid = await new_session(client, user)
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE thread SET run_id = gen_random_uuid(), lease_expires_at = now() + interval '1 minute'"
                " WHERE session_id = :s"
            ),
            {"s": sid},
        )
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(user))
    assert r.status_code == 409


async def test_cache_still_matches_storage_after_a_failed_turn(app, client, user, fake_llm):
    sid = await new_session(client, user)
    assert (
        await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "a"}, headers=auth(user))
    ).status_code == 200
    fake_llm.script(Fault(), *[Fault(status=500)] * 3)  # a tool call, then the follow-up fails
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "[calc:2*2]"}, headers=auth(user))
    assert r.status_code == 503
    async with app.state.runtime.db.engine.connect() as conn:
        thread_id, checkpoint_id = (
            await conn.execute(text("SELECT id, checkpoint_id FROM thread WHERE session_id = :s"), {"s": sid})
        ).one()
    config = {
        "configurable": {"thread_id": str(thread_id), "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    }
    saver = app.state.runtime.graph.checkpointer
    cached = await saver.aget_tuple(config)
    stored = await AsyncPostgresSaver(saver.conn).aget_tuple(config)
    assert cached.checkpoint["channel_versions"] == stored.checkpoint["channel_versions"]
    assert cached.checkpoint["versions_seen"] == stored.checkpoint["versions_seen"]
    assert [m.content for m in cached.checkpoint["channel_values"]["messages"]] == ["a", "Echo: a"]
    # Nothing of the failed run is left in storage: no newer checkpoint, no blob without a checkpoint.
    async with app.state.runtime.db.engine.connect() as conn:
        newer = (
            await conn.execute(
                text("SELECT count(*) FROM checkpoints WHERE thread_id = :t AND checkpoint_id > :c"),
                {"t": str(thread_id), "c": checkpoint_id},
            )
        ).scalar_one()
    assert newer == 0


async def test_model_output_with_nul_is_stored_without_it(client, user, fake_llm):
    sid = await new_session(client, user)
    fake_llm.script(Fault(reply="bad\x00byte"))
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "x"}, headers=auth(user))
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == "badbyte"
    msgs = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert msgs[-1]["content"] == "badbyte"
