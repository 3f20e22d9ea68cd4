"""Feedback on the assistant's messages: set, replace, remove, shown in the transcript."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import assert_error, auth, new_session, register


async def chat(client: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> int:
    """The reply's message id."""
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text
    return int(r.json()["message_id"])


def url(sid: str, mid: int | str) -> str:
    return f"/api/v1/sessions/{sid}/messages/{mid}/feedback"


async def transcript(client: httpx.AsyncClient, user: dict[str, str], sid: str) -> list[dict]:
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_rate_replace_and_remove(client, user):
    sid = await new_session(client, user)
    reply = await chat(client, user, sid, "hello")
    r = await client.put(url(sid, reply), json={"rating": "up"}, headers=auth(user))
    assert r.status_code == 200, r.text
    assert r.json() == {"rating": "up", "comment": None}
    items = await transcript(client, user, sid)
    assert [(m["role"], m["feedback"]) for m in items] == [
        ("user", None),
        ("assistant", {"rating": "up", "comment": None}),
    ]

    body = {"rating": "down", "comment": "  Wrong: it only echoed me.  "}
    r = await client.put(url(sid, reply), json=body, headers=auth(user))
    assert r.json() == {"rating": "down", "comment": "Wrong: it only echoed me."}
    assert (await transcript(client, user, sid))[1]["feedback"] == r.json()

    r = await client.put(url(sid, reply), json={"rating": "down", "comment": "   "}, headers=auth(user))
    assert r.json() == {"rating": "down", "comment": None}

    for _ in range(2):  # removing twice is fine
        r = await client.delete(url(sid, reply), headers=auth(user))
        assert r.status_code == 204
    assert (await transcript(client, user, sid))[1]["feedback"] is None


async def test_only_the_assistants_messages_take_feedback(client, user):
    sid = await new_session(client, user)
    reply = await chat(client, user, sid, "hello")
    r = await client.put(url(sid, reply - 1), json={"rating": "up"}, headers=auth(user))
    body = assert_error(r, 422, "validation_error")
    assert body["detail"][0]["msg"] == "feedback can only be given on the assistant's messages"
    assert body["detail"][0]["loc"] == ["path", "message_id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Field required"),
        ({"rating": "meh"}, "'up' or 'down'"),
        ({"rating": None}, "'up' or 'down'"),
        ({"rating": "up", "comment": "x" * 2001}, "at most 2000 characters"),
        ({"rating": "up", "comment": "bad\x00"}, "NUL"),
        ({"rating": "up", "comment": 5}, "valid string"),
        ({"rating": "up", "stars": 5}, "Extra inputs"),
    ],
)
async def test_bad_feedback_is_a_422_with_a_message(client, user, body, message):
    sid = await new_session(client, user)
    reply = await chat(client, user, sid, "hello")
    r = await client.put(url(sid, reply), json=body, headers=auth(user))
    assert message in assert_error(r, 422, "validation_error")["detail"][0]["msg"]
    r = await client.put(url(sid, reply), json={"rating": "up", "comment": "x" * 2000}, headers=auth(user))
    assert r.status_code == 200


@pytest.mark.parametrize("mid", ["0", "-1", "abc", str(2**63), "1.5"])
async def test_bad_message_ids_are_422_not_500(client, user, mid):
    sid = await new_session(client, user)
    for method in ("PUT", "DELETE"):
        r = await client.request(method, url(sid, mid), json={"rating": "up"}, headers=auth(user))
        assert_error(r, 422, "validation_error")


async def test_someone_elses_message_or_session_is_404(client, user):
    bob = await register(client)
    bob_sid = await new_session(client, bob)
    bob_reply = await chat(client, bob, bob_sid, "bob's")
    mine = await new_session(client, user)
    my_reply = await chat(client, user, mine, "mine")
    other_of_mine = await new_session(client, user)
    for sid, mid in [
        (bob_sid, bob_reply),  # bob's session and message
        (mine, bob_reply),  # bob's message under my session
        (bob_sid, my_reply),  # my message under bob's session
        (other_of_mine, my_reply),  # my message, but not in that session
        (mine, 2**62),  # no such message
        (str(uuid.uuid4()), my_reply),  # no such session
    ]:
        for method in ("PUT", "DELETE"):
            r = await client.request(method, url(sid, mid), json={"rating": "down"}, headers=auth(user))
            assert_error(r, 404, "not_found")
    assert all(m["feedback"] is None for m in await transcript(client, bob, bob_sid))


async def test_the_transcript_reads_feedback_in_the_same_query(app: FastAPI, client, user):
    """As many statements for a page of two messages as for a page of ten rated ones: no query per message."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    async def statements_for(sid: str) -> int:
        statements.clear()
        engine = app.state.runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            await transcript(client, user, sid)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    small = await new_session(client, user)
    await chat(client, user, small, "one")
    big = await new_session(client, user)
    for n in range(5):
        reply = await chat(client, user, big, f"turn {n}")
        r = await client.put(url(big, reply), json={"rating": "up"}, headers=auth(user))
        assert r.status_code == 200
    assert [m["feedback"] is not None for m in await transcript(client, user, big)] == [False, True] * 5
    assert await statements_for(small) == await statements_for(big)
