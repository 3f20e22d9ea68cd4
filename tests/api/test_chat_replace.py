"""Replacing the last turn: regenerate (no message) and edit (a new message), over both chat routes.

The old turn stays until the new one is recorded; the agent's next prompt shows only the new one.
"""

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.api.test_stream import read_events
from tests.conftest import assert_error, auth, new_session, register, serve
from tests.fake_llm import Fault

ROUTES = ["json", "stream"]


async def send(app, client, user, sid: str, body: dict[str, Any], route: str) -> tuple[int, dict[str, Any]]:
    """One turn over either route: the status and the reply (JSON body, or the stream's last event)."""
    if route == "json":
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json=body, headers=auth(user))
        return r.status_code, r.json()
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("POST", f"/api/v1/sessions/{sid}/chat/stream", json=body, headers=auth(user)) as r,
    ):
        if r.status_code != 200:
            return r.status_code, json.loads(await r.aread())
        events = await read_events(r)
    name, data = events[-1]
    assert name in {"done", "error"}, events
    return (200 if name == "done" else 599), data


async def say(client, user, sid: str, *messages: str) -> None:
    for message in messages:
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
        assert r.status_code == 200, r.text


async def transcript(client, user, sid: str) -> list[tuple[str, str]]:
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
    assert r.status_code == 200, r.text
    return [(m["role"], m["content"]) for m in r.json()["items"]]


def last_prompt(fake_llm) -> list[str]:
    """What the agent sent the model on its last call, without the system prompt."""
    return [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]


async def checkpoint_count(app, sid: str) -> int:
    async with app.state.runtime.db.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM checkpoints c JOIN thread t ON c.thread_id = t.id::text "
                        "WHERE t.session_id = :s"
                    ),
                    {"s": sid},
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("route", ROUTES)
async def test_regenerate_replaces_only_the_last_reply(app, client, user, fake_llm, route):
    sid = await new_session(client, user)
    await say(client, user, sid, "one", "two", "three")
    before = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    fake_llm.script_reply("Another take on three", when="three")

    status, body = await send(app, client, user, sid, {"replace_last_turn": True}, route)
    assert status == 200, body
    assert body["reply"] == "Another take on three"
    # The model saw the turns before, and the replaced message once: not the old reply.
    assert last_prompt(fake_llm) == ["one", "Echo: one", "two", "Echo: two", "three"]
    after = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    assert after[:4] == before[:4]  # the earlier turns keep their rows and ids
    assert [(m["role"], m["content"]) for m in after[4:]] == [
        ("user", "three"),
        ("assistant", "Another take on three"),
    ]
    assert after[-1]["id"] == body["message_id"]

    await say(client, user, sid, "four")
    assert last_prompt(fake_llm) == [
        *["one", "Echo: one", "two", "Echo: two", "three", "Another take on three", "four"]
    ]


@pytest.mark.parametrize("route", ROUTES)
async def test_edit_replaces_the_user_message_too(app, client, user, fake_llm, route):
    sid = await new_session(client, user)
    await say(client, user, sid, "one", "two")
    status, body = await send(app, client, user, sid, {"message": "deux", "replace_last_turn": True}, route)
    assert status == 200, body
    assert body["reply"] == "Echo: deux"
    assert last_prompt(fake_llm) == ["one", "Echo: one", "deux"]
    assert await transcript(client, user, sid) == [
        ("user", "one"),
        ("assistant", "Echo: one"),
        ("user", "deux"),
        ("assistant", "Echo: deux"),
    ]
    await say(client, user, sid, "three")
    assert last_prompt(fake_llm) == ["one", "Echo: one", "deux", "Echo: deux", "three"]


async def test_the_first_turn_can_be_replaced_again_and_again(app, client, user, fake_llm):
    sid = await new_session(client, user)
    await say(client, user, sid, "[calc:6*7]")  # a turn with a tool call: four graph messages
    for edit in ["first edit", "second edit"]:
        body = {"message": edit, "replace_last_turn": True}
        status, body = await send(app, client, user, sid, body, "json")
        assert status == 200, body
        assert last_prompt(fake_llm) == [edit]
    status, body = await send(app, client, user, sid, {"replace_last_turn": True}, "json")
    assert status == 200 and body["reply"] == "Echo: second edit"
    await say(client, user, sid, "next")
    assert last_prompt(fake_llm) == ["second edit", "Echo: second edit", "next"]
    assert await transcript(client, user, sid) == [
        ("user", "second edit"),
        ("assistant", "Echo: second edit"),
        ("user", "next"),
        ("assistant", "Echo: next"),
    ]
    # Storage stays bounded: the last turn's checkpoint and the one before it.
    assert await checkpoint_count(app, sid) == 2


async def test_a_turn_whose_earlier_checkpoint_is_gone_is_replaced_from_its_own(app, client, user, fake_llm):
    """Turns recorded before the previous checkpoint was kept: the run drops the turn's messages."""
    sid = await new_session(client, user)
    await say(client, user, sid, "one", "two")
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM checkpoints c USING thread t WHERE c.thread_id = t.id::text "
                "AND t.session_id = :s AND c.checkpoint_id <> t.checkpoint_id"
            ),
            {"s": sid},
        )
    status, body = await send(app, client, user, sid, {"message": "deux", "replace_last_turn": True}, "json")
    assert status == 200, body
    assert last_prompt(fake_llm) == ["one", "Echo: one", "deux"]
    await say(client, user, sid, "three")
    assert last_prompt(fake_llm) == ["one", "Echo: one", "deux", "Echo: deux", "three"]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_failed_replacement_keeps_the_old_turn(app, client, user, fake_llm, route):
    sid = await new_session(client, user)
    await say(client, user, sid, "one", "two")
    before = await transcript(client, user, sid)
    if route == "json":
        fake_llm.script(*[Fault(status=500)] * 3)
    else:
        fake_llm.script(Fault(cut_after_chunks=2))
    edit = {"message": "a b c d", "replace_last_turn": True}
    status, body = await send(app, client, user, sid, edit, route)
    if route == "json":
        assert status == 503 and body["error"] == "llm_unavailable"
    else:
        assert status == 599 and body["error"] in {"llm_unavailable", "agent_error"}
    assert await transcript(client, user, sid) == before
    await say(client, user, sid, "three")
    assert last_prompt(fake_llm) == ["one", "Echo: one", "two", "Echo: two", "three"]


async def test_a_cancelled_replacement_keeps_the_old_turn(app, client, user, fake_llm):
    sid = await new_session(client, user)
    await say(client, user, sid, "one")
    fake_llm.token_delay = 0.2
    body = {"message": " ".join(f"w{i}" for i in range(30)), "replace_last_turn": True}
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        url = f"/api/v1/sessions/{sid}/chat/stream"
        async with http.stream("POST", url, json=body, headers=auth(user)) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: token"):
                    break  # the client leaves mid-reply
        for _ in range(50):
            if fake_llm.closed_early:
                break
            await asyncio.sleep(0.1)
    fake_llm.token_delay = 0
    assert await transcript(client, user, sid) == [("user", "one"), ("assistant", "Echo: one")]
    for _ in range(50):  # the lease is released once the server has torn the run down
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "two"}, headers=auth(user))
        if r.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 200, r.text
    assert last_prompt(fake_llm) == ["one", "Echo: one", "two"]


@pytest.mark.parametrize("route", ROUTES)
async def test_nothing_to_replace_in_an_empty_session_is_a_409(app, client, user, route):
    sid = await new_session(client, user)
    status, body = await send(app, client, user, sid, {"replace_last_turn": True}, route)
    assert status == 409 and body["error"] == "no_turn_to_replace", body
    assert "no completed turn" in body["detail"]
    # The lease taken for the check was released: the session answers at once.
    await say(client, user, sid, "hello")
    assert await transcript(client, user, sid) == [("user", "hello"), ("assistant", "Echo: hello")]


@pytest.mark.parametrize("route", ROUTES)
async def test_replacing_while_answering_is_a_409(app, client, user, fake_llm, route):
    sid = await new_session(client, user)
    await say(client, user, sid, "one")
    fake_llm.requests.clear()
    # Long enough that the lease is still held when the second request arrives, on a busy machine too.
    fake_llm.script(Fault(delay=2.5))
    first = asyncio.create_task(
        client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "slow"}, headers=auth(user))
    )
    for _ in range(200):
        if fake_llm.chat_requests:
            break
        await asyncio.sleep(0.01)
    status, body = await send(app, client, user, sid, {"replace_last_turn": True}, route)
    assert status == 409 and body["error"] == "thread_busy", body
    assert (await first).status_code == 200
    assert [c for r, c in await transcript(client, user, sid) if r == "user"] == ["one", "slow"]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_turn_added_elsewhere_is_not_replaced_unseen(app, client, user, route):
    """A stale tab names the turn it shows; another tab has added one since: 409, nothing replaced."""
    sid = await new_session(client, user)
    await say(client, user, sid, "one")
    seen = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"][0]["id"]
    await say(client, user, sid, "two")  # from another tab
    body = {"replace_last_turn": True, "replaces_message_id": seen}
    status, answer = await send(app, client, user, sid, body, route)
    assert status == 409 and answer["error"] == "turn_changed", answer
    assert [c for r, c in await transcript(client, user, sid) if r == "user"] == ["one", "two"]
    items = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()["items"]
    latest = items[2]["id"]
    status, answer = await send(app, client, user, sid, {**body, "replaces_message_id": latest}, route)
    assert status == 200, answer
    assert [c for r, c in await transcript(client, user, sid) if r == "user"] == ["one", "two"]


@pytest.mark.parametrize("route", ROUTES)
async def test_another_users_session_is_a_404(app, client, user, route):
    sid = await new_session(client, user)
    await say(client, user, sid, "mine")
    other = await register(client)
    for body in ({"replace_last_turn": True}, {"message": "hijack", "replace_last_turn": True}):
        status, answer = await send(app, client, other, sid, body, route)
        assert status == 404 and answer["error"] == "not_found", answer
    assert await transcript(client, user, sid) == [("user", "mine"), ("assistant", "Echo: mine")]


@pytest.mark.parametrize("path", ["chat", "chat/stream"])
async def test_bad_bodies_are_422s(client, user, path):
    sid = await new_session(client, user)
    await say(client, user, sid, "one")
    url = f"/api/v1/sessions/{sid}/{path}"
    for body in ({}, {"replace_last_turn": False}, {"message": None}):
        body_ = assert_error(await client.post(url, json=body, headers=auth(user)), 422, "validation_error")
        assert body_["detail"][0]["loc"] == ["body", "message"]
        assert "replace_last_turn" in body_["detail"][0]["msg"]
    for body in (
        {"message": "  ", "replace_last_turn": True},
        {"replace_last_turn": "maybe"},
        {"message": "x", "replaces_message_id": 1},
        {"replace_last_turn": True, "replaces_message_id": 0},
    ):
        assert_error(await client.post(url, json=body, headers=auth(user)), 422, "validation_error")
    assert await transcript(client, user, sid) == [("user", "one"), ("assistant", "Echo: one")]
