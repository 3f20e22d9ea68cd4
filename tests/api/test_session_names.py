"""Sessions created without a name are named from their first message once it is answered."""

import pytest

from app.services.sessions import name_from_message
from tests.api.test_stream import stream_chat
from tests.conftest import assert_error, auth, new_session


async def chat(client, user, sid: str, message: str) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text


async def name_of(client, user, sid: str) -> str:
    r = await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))
    assert r.status_code == 200, r.text
    return str(r.json()["name"])


async def test_the_first_turn_names_an_unnamed_session_and_the_second_does_not(client, user):
    sid = await new_session(client, user)
    assert await name_of(client, user, sid) == "New chat"
    await chat(client, user, sid, "  Plan a   trip\tto Lisbon  \nwith a budget of 800 euros")
    assert await name_of(client, user, sid) == "Plan a trip to Lisbon"
    await chat(client, user, sid, "And what about Porto?")
    assert await name_of(client, user, sid) == "Plan a trip to Lisbon"


async def test_a_named_session_keeps_its_name(client, user):
    sid = await new_session(client, user, "My own name")
    await chat(client, user, sid, "hello there")
    assert await name_of(client, user, sid) == "My own name"


async def test_a_session_renamed_before_its_first_turn_is_never_auto_named(client, user):
    sid = await new_session(client, user)
    r = await client.patch(f"/api/v1/sessions/{sid}", json={"name": "New chat"}, headers=auth(user))
    assert r.status_code == 200, r.text
    await chat(client, user, sid, "hello there")
    assert await name_of(client, user, sid) == "New chat"  # the user chose it, even the placeholder


async def test_a_failed_turn_leaves_the_placeholder_for_the_next_one(client, user, fake_llm):
    from tests.fake_llm import Fault

    sid = await new_session(client, user)
    fake_llm.script(Fault(status=400))  # a rejection is not retried
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "lost"}, headers=auth(user))
    assert_error(r, 502, "agent_error")
    assert await name_of(client, user, sid) == "New chat"
    await chat(client, user, sid, "kept")
    assert await name_of(client, user, sid) == "kept"


async def test_a_streamed_first_turn_names_the_session_too(app, client, user):
    sid = await new_session(client, user)
    events = await stream_chat(app, user, sid, "Streaming names work as well")
    assert events[-1][0] == "done"
    assert await name_of(client, user, sid) == "Streaming names work as well"
    await stream_chat(app, user, sid, "second")
    assert await name_of(client, user, sid) == "Streaming names work as well"


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ("hello", "hello"),
        ("\n\n   \n  second line is first\nthird", "second line is first"),
        ("a  b\u00a0\u2003c", "a b c"),
        ("word " * 11 + "end", "word " * 11 + "end"),  # 59 characters: not cut
        ("x" * 60, "x" * 60),
        ("x" * 61, "x" * 59 + "…"),  # one word too long for a name: cut inside it
        ("alpha " * 20, "alpha alpha alpha alpha alpha alpha alpha alpha alpha alpha…"),
        ("a" * 58 + " bcd", "a" * 58 + "…"),
        ("a" * 59 + " bcd", "a" * 59 + "…"),
        ("y " * 100_000, ("y " * 30).rstrip() + "…"),
    ],
)
def test_name_from_message(message, name):
    derived = name_from_message(message)
    assert derived == name
    assert len(derived) <= 60
