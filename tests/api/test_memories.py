"""Long-term memory through the API and the chat: recall across sessions, isolation, the memory API."""

import json
import uuid

import pytest
from sqlalchemy import text as sql

from tests.conftest import assert_error, auth, new_session, register
from tests.fake_llm import Fault


async def _chat(client, user, sid, message):
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    return r.json()


def _system_prompt(fake_llm) -> str:
    return fake_llm.chat_requests[-1]["messages"][0]["content"]


async def test_a_fact_from_session_one_is_recalled_in_session_two(app, client, fake_llm):
    user = await register(client)
    first = await new_session(client, user)
    await _chat(client, user, first, "Hi! [remember:My favourite colour is teal]")
    await app.state.runtime.memory_jobs.idle()

    # Only the new message went to extraction, never the conversation again.
    extraction = fake_llm.extraction_requests[-1]["messages"][-1]["content"]
    assert "favourite colour is teal" in extraction.partition("## New Messages")[2]
    assert "Echo:" not in extraction.partition("## New Messages")[2]

    second = await new_session(client, user)
    await _chat(client, user, second, "What is my favourite colour?")
    prompt = _system_prompt(fake_llm)
    assert "remember about this user" in prompt
    assert "- My favourite colour is teal" in prompt

    memories = (await client.get("/api/v1/memories", headers=auth(user))).json()
    assert [m["text"] for m in memories["items"]] == ["My favourite colour is teal"]
    assert memories["items"][0]["session_id"] == first


async def test_a_memory_names_the_session_it_was_learned_in_until_that_session_is_deleted(
    app, client, fake_llm
):
    user = await register(client)
    h = auth(user)
    learned_in, other = await new_session(client, user), await new_session(client, user)
    await _chat(client, user, learned_in, "[remember:My sister lives in Lyon]")
    await app.state.runtime.memory_jobs.idle()
    by_hand = (await client.post("/api/v1/memories", json={"text": "Plays the cello"}, headers=h)).json()
    assert by_hand["session_id"] is None

    listed = {m["text"]: m for m in (await client.get("/api/v1/memories", headers=h)).json()["items"]}
    learned = listed["My sister lives in Lyon"]
    assert learned["session_id"] == learned_in and listed["Plays the cello"]["session_id"] is None
    url = f"/api/v1/memories/{learned['id']}"
    assert (await client.get(url, headers=h)).json()["session_id"] == learned_in
    hits = (await client.get("/api/v1/memories/search", params={"q": "sister Lyon"}, headers=h)).json()
    assert {m["text"]: m["session_id"] for m in hits["items"]}["My sister lives in Lyon"] == learned_in
    # Editing it by hand keeps where it was learned.
    r = await client.patch(url, json={"text": "My sister lives in Nice"}, headers=h)
    assert r.json()["session_id"] == learned_in

    # The memory outlives its session; the link then reads as null everywhere.
    assert (await client.delete(f"/api/v1/sessions/{learned_in}", headers=h)).status_code == 204
    assert (await client.get(url, headers=h)).json()["session_id"] is None
    listed = (await client.get("/api/v1/memories", headers=h)).json()["items"]
    assert {m["text"]: m["session_id"] for m in listed} == {
        "My sister lives in Nice": None,
        "Plays the cello": None,
    }
    hits = (await client.get("/api/v1/memories/search", params={"q": "sister"}, headers=h)).json()["items"]
    assert all(m["session_id"] is None for m in hits)
    # Recall in another session still has it.
    await _chat(client, user, other, "Where does my sister live?")
    assert "- My sister lives in Nice" in _system_prompt(fake_llm)


async def test_memories_never_cross_users(app, client, fake_llm):
    alice, bob = await register(client), await register(client)
    await _chat(client, alice, await new_session(client, alice), "[remember:Alice's PIN hint is the moon]")
    await app.state.runtime.memory_jobs.idle()
    alice_memory = (await client.get("/api/v1/memories", headers=auth(alice))).json()["items"][0]

    bob_sid = await new_session(client, bob)
    await _chat(client, bob, bob_sid, "What is my PIN hint, the moon?")
    assert "moon" not in _system_prompt(fake_llm).partition("remember about this user")[2]
    assert (await client.get("/api/v1/memories", headers=auth(bob))).json()["total"] == 0
    r = await client.get("/api/v1/memories/search", params={"q": "PIN hint moon"}, headers=auth(bob))
    assert r.json()["items"] == []

    mid = alice_memory["id"]
    for method, path, body in [
        ("GET", f"/api/v1/memories/{mid}", None),
        ("PATCH", f"/api/v1/memories/{mid}", {"text": "hijacked"}),
        ("DELETE", f"/api/v1/memories/{mid}", None),
        ("GET", f"/api/v1/memories/{mid}/history", None),
    ]:
        r = await client.request(method, path, json=body, headers=auth(bob))
        assert_error(r, 404, "not_found")
    # Bob deleting "all" of his memories leaves Alice's alone.
    assert (await client.delete("/api/v1/memories", headers=auth(bob))).json() == {"deleted": 0}
    r = await client.get(f"/api/v1/memories/{mid}", headers=auth(alice))
    assert r.json()["text"] == "Alice's PIN hint is the moon"

    # The memory tool answers from the calling user's memories only, whatever the model asks for.
    alice_id = (await client.get("/api/v1/auth/me", headers=auth(alice))).json()["id"]
    call = "[tool:search_memory:" + json.dumps({"query": "PIN hint moon", "user_id": alice_id}) + "]"
    reply = await _chat(client, bob, bob_sid, call)
    assert "moon" not in reply["reply"]
    assert "Nothing remembered" in reply["reply"] or "Error" in reply["reply"]


async def test_memory_api_round_trip(client):
    user = await register(client)
    h = auth(user)
    r = await client.post("/api/v1/memories", json={"text": "  Works as a nurse in Porto  "}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["text"] == "Works as a nurse in Porto"
    assert created["created_at"] and created["updated_at"] and created["session_id"] is None
    for text in ("Has two cats", "Allergic to peanuts"):
        assert (await client.post("/api/v1/memories", json={"text": text}, headers=h)).status_code == 201

    page = (await client.get("/api/v1/memories", params={"limit": 2}, headers=h)).json()
    assert page["total"] == 3 and page["limit"] == 2 and len(page["items"]) == 2
    assert page["items"][0]["text"] == "Allergic to peanuts"  # newest first
    rest = (await client.get("/api/v1/memories", params={"limit": 2, "offset": 2}, headers=h)).json()
    assert [m["text"] for m in rest["items"]] == ["Works as a nurse in Porto"]

    hits = (await client.get("/api/v1/memories/search", params={"q": "what is my job?"}, headers=h)).json()
    assert hits["items"][0]["text"] == "Works as a nurse in Porto"
    assert -1 <= hits["items"][0]["score"] <= 1

    mid = created["id"]
    r = await client.patch(f"/api/v1/memories/{mid}", json={"text": "Works as a doctor in Porto"}, headers=h)
    assert r.status_code == 200 and r.json()["text"] == "Works as a doctor in Porto"
    assert r.json()["updated_at"] > created["updated_at"] and r.json()["created_at"] == created["created_at"]

    assert (await client.delete(f"/api/v1/memories/{mid}", headers=h)).status_code == 204
    assert_error(await client.get(f"/api/v1/memories/{mid}", headers=h), 404)
    history = (await client.get(f"/api/v1/memories/{mid}/history", headers=h)).json()
    assert history["memory_id"] == mid
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in history["items"]] == [
        ("ADD", None, "Works as a nurse in Porto"),
        ("UPDATE", "Works as a nurse in Porto", "Works as a doctor in Porto"),
        ("DELETE", "Works as a doctor in Porto", None),
    ]
    assert_error(await client.delete(f"/api/v1/memories/{mid}", headers=h), 404)

    assert (await client.delete("/api/v1/memories", headers=h)).json() == {"deleted": 2}
    assert (await client.get("/api/v1/memories", headers=h)).json()["total"] == 0
    assert_error(await client.get(f"/api/v1/memories/{mid}/history", headers=h), 404)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/memories", {"json": {"text": ""}}),
        ("POST", "/api/v1/memories", {"json": {"text": "   "}}),
        ("POST", "/api/v1/memories", {"json": {"text": "x" * 1001}}),
        ("POST", "/api/v1/memories", {"json": {"text": "nul\x00byte"}}),
        ("POST", "/api/v1/memories", {"json": {"text": 42}}),
        ("POST", "/api/v1/memories", {"json": {}}),
        (
            "POST",
            "/api/v1/memories",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        ("GET", "/api/v1/memories", {"params": {"limit": 0}}),
        ("GET", "/api/v1/memories", {"params": {"offset": -1}}),
        ("GET", "/api/v1/memories/search", {"params": {}}),
        ("GET", "/api/v1/memories/search", {"params": {"q": ""}}),
        ("GET", "/api/v1/memories/search", {"params": {"q": "   "}}),
        ("GET", "/api/v1/memories/search", {"params": {"q": "a", "limit": 51}}),
        ("GET", "/api/v1/memories/not-a-uuid", {}),
        ("PATCH", f"/api/v1/memories/{uuid.uuid4()}", {"json": {"text": ""}}),
        ("DELETE", "/api/v1/memories/123", {}),
    ],
)
async def test_bad_input_is_a_clear_422(client, user, method, path, kwargs):
    headers = {**auth(user), **kwargs.pop("headers", {})}
    r = await client.request(method, path, headers=headers, **kwargs)
    body = assert_error(r, 422)
    assert body["detail"]


async def test_unknown_memory_is_404_and_anonymous_is_401(client, user):
    missing = uuid.uuid4()
    assert_error(await client.get(f"/api/v1/memories/{missing}", headers=auth(user)), 404, "not_found")
    r = await client.patch(f"/api/v1/memories/{missing}", json={"text": "x"}, headers=auth(user))
    assert_error(r, 404, "not_found")
    assert_error(await client.get("/api/v1/memories"), 401)
    assert_error(await client.post("/api/v1/memories", json={"text": "x"}), 401)


async def test_failing_extraction_is_retried_and_never_breaks_the_chat(app, client, fake_llm):
    jobs = app.state.runtime.memory_jobs
    user = await register(client)
    sid = await new_session(client, user)
    fake_llm.script_extraction(Fault(status=400))  # 400: not retried by the client
    reply = await _chat(client, user, sid, "Note this [remember:I live in Oslo]")
    assert reply["reply"].startswith("Echo:")
    await jobs.idle()
    query = sql(
        "SELECT j.attempts, j.last_error, j.failed_at FROM memory_job j"
        ' JOIN "user" u ON u.id = j.user_id WHERE u.email = :e'
    )
    async with app.state.runtime.db.engine.connect() as conn:
        attempts, error, failed_at = (await conn.execute(query, {"e": user["email"]})).one()
    assert (attempts, error, failed_at) == (1, "LLMError", None)  # kept, to be tried again
    assert (await client.get("/api/v1/memories", headers=auth(user))).json()["total"] == 0
    # The next turn extracts normally.
    await _chat(client, user, sid, "[remember:I live in Bergen]")
    await jobs.idle()
    items = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert [m["text"] for m in items] == ["I live in Bergen"]
    # The failed job runs again once its back-off is over (brought forward here), and succeeds.
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            sql(
                'UPDATE memory_job SET run_after = now() FROM "user" u WHERE u.id = user_id AND u.email = :e'
            ),
            {"e": user["email"]},
        )
    await jobs.idle()
    items = (await client.get("/api/v1/memories", headers=auth(user))).json()["items"]
    assert sorted(m["text"] for m in items) == ["I live in Bergen", "I live in Oslo"]
    async with app.state.runtime.db.engine.connect() as conn:
        assert (await conn.execute(query, {"e": user["email"]})).first() is None
