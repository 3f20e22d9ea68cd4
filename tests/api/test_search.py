"""Full-text search over one's own session titles and messages."""

import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.db import normalise_url
from app.db.migrations import upgrade_to_head
from app.repositories.search import _HEADLINE, _PAGE
from tests.conftest import assert_error, auth, new_session, register, scratch_database
from tests.reporting import report


async def chat(client: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> None:
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
    assert r.status_code == 200, r.text


async def search(client: httpx.AsyncClient, user: dict[str, str], q: str, **params: int) -> dict:
    r = await client.get("/api/v1/sessions/search", params={"q": q, **params}, headers=auth(user))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_finds_titles_and_messages_newest_first(client, user):
    sid = await new_session(client, user, "Lisbon trip")
    await chat(client, user, sid, "Where are the best pastéis in Belém?\nSecond line")
    other = await new_session(client, user, "Groceries")
    await chat(client, user, other, "milk and bread")

    titles = await search(client, user, "LISBON")
    assert titles["total"] == 1
    [hit] = titles["items"]
    assert hit["session_id"] == sid and hit["session_name"] == "Lisbon trip"
    assert hit["message_id"] is None and hit["role"] is None and hit["snippet"] == "Lisbon trip"

    found = await search(client, user, "belém pastéis")
    assert [h["role"] for h in found["items"]] == ["assistant", "user"]  # the reply is the newer one
    assert {h["session_name"] for h in found["items"]} == {"Lisbon trip"}
    assert found["items"][0]["message_id"] > found["items"][1]["message_id"]
    assert "Belém" in found["items"][1]["snippet"] and "<" not in found["items"][1]["snippet"]
    assert set(found["items"][0]) == {
        "session_id", "session_name", "message_id", "role", "snippet", "created_at"
    }  # fmt: skip

    # Web-search syntax: a phrase, an exclusion, "or".
    assert (await search(client, user, '"best pastéis"'))["total"] == 2
    assert (await search(client, user, '"pastéis best"'))["total"] == 0
    assert (await search(client, user, "milk -bread"))["total"] == 0
    assert (await search(client, user, "milk or lisbon"))["total"] == 3


async def test_long_messages_get_a_short_plain_snippet(client, user):
    sid = await new_session(client, user, "Notes")
    filler = " ".join(f"word{i}" for i in range(400))
    await chat(client, user, sid, f"{filler} needle {filler}")
    [user_hit, *_] = (await search(client, user, "needle"))["items"][::-1]
    assert "needle" in user_hit["snippet"]
    assert len(user_hit["snippet"]) < 600


async def test_never_finds_another_users_data(client, user):
    bob = await register(client)
    sid = await new_session(client, bob, "zanzibar secrets")
    await chat(client, bob, sid, "zanzibar is where the treasure is")
    mine = await new_session(client, user, "mine")
    await chat(client, user, mine, "nothing about islands")
    assert (await search(client, user, "zanzibar")) == {"items": [], "total": 0, "limit": 20, "offset": 0}
    assert (await search(client, bob, "zanzibar"))["total"] == 3


async def test_pages(client, user):
    sid = await new_session(client, user, "paging")
    for n in range(3):
        await chat(client, user, sid, f"kiwi number {n}")
    everything = await search(client, user, "kiwi", limit=100)
    assert everything["total"] == 6
    ids = [h["message_id"] for h in everything["items"]]
    assert ids == sorted(ids, reverse=True)
    pages = [await search(client, user, "kiwi", limit=4, offset=offset) for offset in (0, 4)]
    assert [len(p["items"]) for p in pages] == [4, 2]
    assert [h["message_id"] for p in pages for h in p["items"]] == ids
    assert all(p["total"] == 6 for p in pages)
    past = await search(client, user, "kiwi", limit=4, offset=40)
    assert past["items"] == [] and past["total"] == 6


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Field required"),
        ({"q": ""}, "q must not be blank"),
        ({"q": "   \t"}, "q must not be blank"),
        ({"q": "x" * 201}, "at most 200 characters"),
        ({"q": "bad\x00query"}, "NUL"),
        ({"q": "ok", "limit": 0}, "greater than or equal to 1"),
        ({"q": "ok", "offset": -1}, "greater than or equal to 0"),
    ],
)
async def test_bad_queries_are_422_with_a_message(client, user, params, message):
    r = await client.get("/api/v1/sessions/search", params=params, headers=auth(user))
    body = assert_error(r, 422, "validation_error")
    assert message in body["detail"][0]["msg"]


@pytest.mark.parametrize("q", ["x" * 200, "' OR 1=1 --", "a & b | !c", ':* <-> \\ "', "-", '"', "or", "ü*"])
async def test_odd_queries_are_answered_not_500(client, user, q):
    r = await client.get("/api/v1/sessions/search", params={"q": q}, headers=auth(user))
    assert r.status_code == 200, r.text


async def test_the_route_is_not_taken_for_a_session_id(client, user):
    r = await client.get("/api/v1/sessions/search", headers=auth(user))
    assert_error(r, 422, "validation_error")  # not "search is not a UUID"
    assert r.json()["detail"][0]["loc"] == ["query", "q"]


async def test_the_search_uses_the_gin_indexes(pg_url):
    """On a database of its own, whose statistics only this test's rows make: a user with many
    messages, searched for a rare word, is served by the GIN index, not by reading every message."""
    with scratch_database(pg_url, "fts") as url:
        urls = normalise_url(url)
        await upgrade_to_head(urls.sqlalchemy)
        engine = create_engine(urls.sqlalchemy)
        try:
            with engine.begin() as conn:
                fts = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%fts'"
                found = conn.execute(text(fts))
                indexes = {name: definition for name, definition in found}
                on_content = "USING gin (to_tsvector('simple'::regconfig, content))"
                on_name = "USING gin (to_tsvector('simple'::regconfig, (name)::text))"
                assert on_content in indexes["ix_message_content_fts"]
                assert on_name in indexes["ix_session_name_fts"]
                user_id = conn.execute(
                    text(
                        'INSERT INTO "user" (id, email, hashed_password, is_active, role, created_at) VALUES'
                        " (gen_random_uuid(), 'fts@example.com', 'x', true, 'user', now()) RETURNING id"
                    )
                ).scalar_one()
                # 50 sessions of 400 messages each, one of them with the rare word.
                conn.execute(
                    text(
                        "WITH s AS (INSERT INTO session (id, user_id, name, created_at, updated_at)"
                        " SELECT gen_random_uuid(), :u, 'chat ' || n, now(), now()"
                        " FROM generate_series(1, 50) n RETURNING id),"
                        " t AS (INSERT INTO thread (id, session_id, created_at)"
                        " SELECT gen_random_uuid(), s.id, now() FROM s RETURNING id)"
                        " INSERT INTO message (thread_id, role, content, created_at)"
                        " SELECT t.id, 'user', 'common filler words number ' || n, now()"
                        " FROM t, generate_series(1, 400) AS n"
                    ),
                    {"u": user_id},
                )
                last = "(SELECT max(id) FROM message)"
                conn.execute(text(f"UPDATE message SET content = 'a rare quetzal' WHERE id = {last}"))
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                params = {"q": "quetzal", "user_id": user_id, "limit": 20, "offset": 0, "headline": _HEADLINE}
                plan = "\n".join(conn.execute(text("EXPLAIN " + _PAGE), params).scalars())
                hits = conn.execute(text(_PAGE), params).mappings().all()
                for word in ("quetzal", "common"):  # one hit; all 20,000 (counted and sorted)
                    took = []
                    for _ in range(5):
                        started = time.perf_counter()
                        conn.execute(text(_PAGE), {**params, "q": word}).all()
                        took.append((time.perf_counter() - started) * 1000)
                    report(f"search of 20,000 messages for {word!r}, median ms", f"{sorted(took)[2]:.1f}")
        finally:
            engine.dispose()
    assert "ix_message_content_fts" in plan, plan
    assert [h["snippet"] for h in hits] == ["a rare quetzal"]
