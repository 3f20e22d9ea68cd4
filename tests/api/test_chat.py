"""Chatting through the API: replies, tools, transcript, isolation."""

import httpx

from tests.conftest import auth, new_session, register


async def chat(client: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> httpx.Response:
    return await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))


async def test_chat_replies_and_transcript_records_it(client, user):
    sid = await new_session(client, user)
    r = await chat(client, user, sid, "hello there")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] == "Echo: hello there"
    assert body["tool_calls"] == []
    assert body["output_tokens"] > 0
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
    assert [(m["role"], m["content"]) for m in r.json()["items"]] == [
        ("user", "hello there"),
        ("assistant", "Echo: hello there"),
    ]


async def test_chat_uses_calculator_tool(client, user):
    sid = await new_session(client, user)
    r = await chat(client, user, sid, "what is [calc:6*7]?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] == "The tool said: 42"
    assert body["tool_calls"] == [
        {"name": "calculator", "args": {"expression": "6*7"}, "result": "42", "is_error": False}
    ]
    msgs = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert msgs[1]["tool_calls"][0]["name"] == "calculator"


async def test_disabled_user_cannot_chat_with_a_valid_token(app, client):
    from sqlalchemy import text

    user = await register(client)
    sid = await new_session(client, user)
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(text('UPDATE "user" SET is_active = false WHERE email = :e'), {"e": user["email"]})
    r = await chat(client, user, sid, "hello")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    r = await client.post(f"/api/v1/sessions/{sid}/chat/stream", json={"message": "x"}, headers=auth(user))
    assert r.status_code == 401
    assert (await client.get("/api/v1/sessions", headers=auth(user))).status_code == 401


async def test_lone_surrogates_are_rejected_not_a_500(client, user):
    sid = await new_session(client, user)
    headers = {**auth(user), "content-type": "application/json"}
    r = await client.post(
        f"/api/v1/sessions/{sid}/chat", content=b'{"message": "hi \\ud800"}', headers=headers
    )
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "s@example.com", "password": "Aa1!aaaa\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    form = f"username={user['email']}&password=Aa1!%ED%A0%80%FF".encode()
    r = await client.post(
        "/api/v1/auth/login", content=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code in (401, 422)
