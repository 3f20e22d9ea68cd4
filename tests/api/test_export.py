"""GET /auth/me/export: one zip of the caller's data, and nobody else's, streamed as it is written."""

import io
import json
import re
import zipfile

import httpx
from sqlalchemy import text

from tests.api.test_limits import limited_app
from tests.conftest import asgi_client, assert_error, auth, new_session, register, serve

EXPORT = "/api/v1/auth/me/export"


async def export(client: httpx.AsyncClient, user: dict[str, str]) -> zipfile.ZipFile:
    r = await client.get(EXPORT, headers=auth(user))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="export-\d{4}-\d{2}-\d{2}\.zip"', r.headers["content-disposition"]
    )
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None  # every entry's CRC checks out
    return archive


async def chat(client, user, sid: str, message: str) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text


async def test_the_export_holds_exactly_the_callers_data(app, client):
    alice, bob = await register(client), await register(client)
    first = await new_session(client, alice, "Plans")
    await chat(client, alice, first, "alice's first secret")
    await chat(client, alice, first, "[calc:6*7]")
    second = await new_session(client, alice, "Second thoughts")
    await chat(client, alice, second, "alice again")
    bobs = await new_session(client, bob, "Bob's")
    await chat(client, bob, bobs, "bob's secret")
    r = await client.post("/api/v1/memories", json={"text": "Alice drinks green tea"}, headers=auth(alice))
    assert r.status_code == 201, r.text
    memory_id = r.json()["id"]
    r = await client.patch(
        f"/api/v1/memories/{memory_id}", json={"text": "Alice drinks oolong"}, headers=auth(alice)
    )
    assert r.status_code == 200, r.text
    assert (
        await client.post("/api/v1/memories", json={"text": "Bob hikes"}, headers=auth(bob))
    ).status_code == 201

    rated = await rate_last_reply(client, alice, first, "up", "spot on")
    await rate_last_reply(client, bob, bobs, "down", "bob's complaint")

    async with app.state.runtime.db.engine.begin() as conn:
        quota = text('UPDATE "user" SET daily_message_quota = 7 WHERE email = :e')
        await conn.execute(quota, {"e": alice["email"]})

    archive = await export(client, alice)
    assert sorted(archive.namelist()) == sorted(
        [
            "README.txt",
            "account.json",
            f"sessions/{first}.json",
            f"sessions/{first}.md",
            f"sessions/{second}.json",
            f"sessions/{second}.md",
            "memories.json",
            "feedback.json",
        ]
    )
    everything = b"".join(archive.read(name) for name in archive.namelist()).decode()
    for theirs in ("bob's secret", "Bob hikes", bobs, bob["email"], "bob's complaint"):
        assert theirs not in everything

    account = json.loads(archive.read("account.json"))
    assert account["email"] == alice["email"] and account["role"] == "user"
    assert set(account) == {"id", "email", "role", "is_active", "created_at", "quotas"}
    assert account["quotas"] == {"messages_per_day": 7, "tokens_per_day": None}
    assert "password" not in archive.read("account.json").decode()

    session = json.loads(archive.read(f"sessions/{first}.json"))
    assert session["name"] == "Plans" and session["id"] == first
    assert [(m["role"], m["content"]) for m in session["messages"]] == [
        ("user", "alice's first secret"),
        ("assistant", "Echo: alice's first secret"),
        ("user", "[calc:6*7]"),
        ("assistant", "The tool said: 42"),
    ]
    assert session["messages"][3]["tool_calls"] == [
        {"name": "calculator", "args": {"expression": "6*7"}, "result": "42", "is_error": False}
    ]
    assert session["messages"][1]["output_tokens"] > 0 and session["messages"][1]["input_tokens"] > 0
    # The same as the API's transcript.
    api = (await client.get(f"/api/v1/sessions/{first}/messages", headers=auth(alice))).json()["items"]
    assert [m["id"] for m in session["messages"]] == [m["id"] for m in api]

    markdown = archive.read(f"sessions/{first}.md").decode()
    assert markdown.startswith("# Plans\n")
    for line in (
        "alice's first secret",
        "Echo: alice's first secret",
        "Tool `calculator`",
        "The tool said: 42",
    ):
        assert line in markdown
    assert markdown.index("### You") < markdown.index("### Assistant")

    memories = json.loads(archive.read("memories.json"))
    assert [m["text"] for m in memories] == ["Alice drinks oolong"]
    assert [h["event"] for h in memories[0]["history"]] == ["ADD", "UPDATE"]
    assert memories[0]["history"][1]["old_memory"] == "Alice drinks green tea"

    feedback = json.loads(archive.read("feedback.json"))
    assert [(f["message_id"], f["session_id"], f["rating"], f["comment"]) for f in feedback] == [
        (rated, first, "up", "spot on")
    ]

    readme = archive.read("README.txt").decode()
    names = ("account.json", "sessions/<session id>.json", "sessions/<session id>.md", "memories.json")
    for name in (*names, "feedback.json"):
        assert name in readme


async def rate_last_reply(client, user, session_id: str, rating: str, comment: str) -> int:
    items = (await client.get(f"/api/v1/sessions/{session_id}/messages", headers=auth(user))).json()["items"]
    reply = next(m for m in items if m["role"] == "assistant")["id"]
    r = await client.put(
        f"/api/v1/sessions/{session_id}/messages/{reply}/feedback",
        json={"rating": rating, "comment": comment},
        headers=auth(user),
    )
    assert r.status_code == 200, r.text
    return int(reply)


async def test_a_user_with_nothing_gets_a_valid_zip(client):
    user = await register(client)
    archive = await export(client, user)
    assert sorted(archive.namelist()) == ["README.txt", "account.json", "feedback.json", "memories.json"]
    assert json.loads(archive.read("memories.json")) == []
    assert json.loads(archive.read("feedback.json")) == []
    assert json.loads(archive.read("account.json"))["email"] == user["email"]


async def test_the_export_needs_a_token(client):
    r = await client.get(EXPORT)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


async def test_the_export_has_a_limit_of_its_own(pg_url, fake_llm):
    async with (
        await limited_app(pg_url, fake_llm, rate_limit_export="1/hour") as app,  # memory turned off
        asgi_client(app) as client,
    ):
        user = await register(client)
        archive = await export(client, user)
        assert json.loads(archive.read("memories.json")) == []
        assert_error(await client.get(EXPORT, headers=auth(user)), 429, "rate_limited")
        assert (await client.get("/api/v1/auth/me", headers=auth(user))).status_code == 200


async def test_the_export_arrives_in_pieces_over_http(app, client):
    """Many messages: the archive reaches the client in many chunks, and opens whole."""
    user = await register(client)
    sid = await new_session(client, user)
    await add_messages(app, sid, 3000)
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream("GET", EXPORT, headers=auth(user)) as r,
    ):
        assert r.status_code == 200
        chunks = [chunk async for chunk in r.aiter_raw()]
    assert len(chunks) >= 10, len(chunks)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert len(json.loads(archive.read(f"sessions/{sid}.json"))["messages"]) == 3000


async def add_messages(app, sid: str, count: int) -> None:
    """`count` messages of about 400 characters of random hex (which compresses by half at best)."""
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO message (thread_id, role, content, created_at)"
                " SELECT t.id, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,"
                "  (SELECT string_agg(md5(g::text || ':' || i::text), ' ') FROM generate_series(1, 12) i),"
                "  now() FROM thread t, generate_series(1, :n) g WHERE t.session_id = :s"
            ),
            {"s": sid, "n": count},
        )
