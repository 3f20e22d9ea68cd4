"""The per-session memory switch: off, a session's turns neither recall nor teach memories."""

import pytest
from sqlalchemy import text as sql

from tests.conftest import assert_error, auth, new_session


async def chat(client, user, sid: str, message: str) -> dict:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    return dict(r.json())


def system_prompt(fake_llm) -> str:
    return str(fake_llm.chat_requests[-1]["messages"][0]["content"])


async def jobs_of(app, sid: str) -> int:
    async with app.state.runtime.db.engine.connect() as conn:
        result = await conn.execute(sql("SELECT count(*) FROM memory_job WHERE session_id = :s"), {"s": sid})
        return int(result.scalar_one())


async def test_the_switch_defaults_on_and_is_set_at_creation_and_by_patch(client, user):
    r = await client.post("/api/v1/sessions", json={}, headers=auth(user))
    assert r.json()["memory_enabled"] is True
    r = await client.post("/api/v1/sessions", json={"memory_enabled": False}, headers=auth(user))
    assert r.status_code == 201 and r.json()["memory_enabled"] is False
    sid, name = r.json()["id"], r.json()["name"]
    r = await client.patch(f"/api/v1/sessions/{sid}", json={"memory_enabled": True}, headers=auth(user))
    assert r.status_code == 200 and r.json()["memory_enabled"] is True
    assert r.json()["name"] == name  # left as it was
    r = await client.patch(
        f"/api/v1/sessions/{sid}", json={"name": "both", "memory_enabled": False}, headers=auth(user)
    )
    assert (r.json()["name"], r.json()["memory_enabled"]) == ("both", False)
    r = await client.patch(f"/api/v1/sessions/{sid}", json={"name": "only the name"}, headers=auth(user))
    assert (r.json()["name"], r.json()["memory_enabled"]) == ("only the name", False)
    listed = (await client.get("/api/v1/sessions", headers=auth(user))).json()["items"]
    assert {s["id"]: s["memory_enabled"] for s in listed}[sid] is False


@pytest.mark.parametrize("body", [{}, {"name": None}, {"memory_enabled": None}, {"memory_enabled": "maybe"}])
async def test_a_patch_changing_nothing_is_a_422(client, user, body):
    sid = await new_session(client, user, "kept")
    r = await client.patch(f"/api/v1/sessions/{sid}", json=body, headers=auth(user))
    detail = assert_error(r, 422, "validation_error")["detail"]
    if "memory_enabled" not in body or body["memory_enabled"] is None:
        assert "give a name, memory_enabled, or both" in detail[0]["msg"]


async def test_with_memory_off_nothing_is_recalled_or_learned(app, client, user, fake_llm):
    # A memory learned in an ordinary session.
    learning = await new_session(client, user)
    await chat(client, user, learning, "Hi! [remember:My cat is called Miso]")
    await app.state.runtime.memory_jobs.idle()
    assert await jobs_of(app, learning) == 0  # done and removed
    memories = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert [m["text"] for m in memories] == ["My cat is called Miso"]

    r = await client.post("/api/v1/sessions", json={"memory_enabled": False}, headers=auth(user))
    private = r.json()["id"]
    extractions = len(fake_llm.extraction_requests)
    await chat(client, user, private, "What is my cat called? [remember:My dog is called Rex]")
    assert "Miso" not in system_prompt(fake_llm)
    assert "remember about this user" not in system_prompt(fake_llm)
    # No job row was written for this turn, so nothing can ever learn from it.
    assert await jobs_of(app, private) == 0
    await app.state.runtime.memory_jobs.idle()
    assert len(fake_llm.extraction_requests) == extractions
    memories = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert [m["text"] for m in memories] == ["My cat is called Miso"]

    # The model's own memory tool is off there too.
    reply = await chat(client, user, private, '[tool:search_memory:{"query": "cat"}]')
    assert "switched off" in reply["reply"] and "Miso" not in reply["reply"]

    # Switched back on: the same session recalls and learns again.
    r = await client.patch(f"/api/v1/sessions/{private}", json={"memory_enabled": True}, headers=auth(user))
    assert r.status_code == 200
    await chat(client, user, private, "What is my cat called?")
    assert "- My cat is called Miso" in system_prompt(fake_llm)
