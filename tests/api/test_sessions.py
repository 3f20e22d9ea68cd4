"""Chat sessions through the API: CRUD, paging, isolation, deletion of every checkpoint, request limits."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import assert_error, auth, new_session, register

CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


async def chat(client: httpx.AsyncClient, user: dict[str, str], sid: str, message: str) -> httpx.Response:
    return await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))


def raw_json(user: dict[str, str]) -> dict[str, str]:
    return {**auth(user), "Content-Type": "application/json"}


async def thread_id(app: FastAPI, sid: str) -> str:
    async with app.state.runtime.db.engine.connect() as conn:
        result = await conn.execute(text("select id from thread where session_id = :sid"), {"sid": sid})
        return str(result.scalar_one())


async def checkpoint_rows(app: FastAPI, tid: str) -> dict[str, int]:
    counts = {}
    async with app.state.runtime.db.engine.connect() as conn:
        for table in CHECKPOINT_TABLES:
            result = await conn.execute(
                text(f"select count(*) from {table} where thread_id = :t"), {"t": tid}
            )
            counts[table] = int(result.scalar_one())
    return counts


# --- create


async def test_create_session_defaults_and_strips_name(client, user):
    r = await client.post("/api/v1/sessions", json={}, headers=auth(user))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "New chat"
    uuid.UUID(r.json()["id"])
    r = await client.post("/api/v1/sessions", json={"name": "  Trip plans \n"}, headers=auth(user))
    assert r.status_code == 201
    assert r.json()["name"] == "Trip plans"
    r = await client.post("/api/v1/sessions", json={"name": "x" * 200}, headers=auth(user))
    assert r.status_code == 201


BAD_NAMES = [
    "",
    "x" * 201,
    "bad\x00name",
    42,
    "   ",
    "\n\t",
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_create_session_rejects_bad_names(client, user, name):
    r = await client.post("/api/v1/sessions", json={"name": name}, headers=auth(user))
    body = assert_error(r, 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize("name", [*BAD_NAMES, None])
async def test_rename_session_rejects_bad_names(client, user, name):
    sid = await new_session(client, user, "Original")
    r = await client.patch(f"/api/v1/sessions/{sid}", json={"name": name}, headers=auth(user))
    assert_error(r, 422, "validation_error")
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))).json()["name"] == "Original"


async def test_padded_name_of_200_chars_is_accepted_after_stripping(client, user):
    r = await client.post("/api/v1/sessions", json={"name": " " + "x" * 200 + " "}, headers=auth(user))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "x" * 200


# --- list


async def test_list_is_newest_first_paginated_and_only_mine(client, user):
    other = await register(client)
    await new_session(client, other, "not yours")
    ids = [await new_session(client, user, f"s{i}") for i in range(3)]
    r = await client.get("/api/v1/sessions", headers=auth(user))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [s["id"] for s in page["items"]] == ids[::-1]
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)

    r = await client.get("/api/v1/sessions", params={"limit": 2}, headers=auth(user))
    assert [s["name"] for s in r.json()["items"]] == ["s2", "s1"]
    assert r.json()["total"] == 3
    r = await client.get("/api/v1/sessions", params={"limit": 2, "offset": 2}, headers=auth(user))
    assert [s["name"] for s in r.json()["items"]] == ["s0"]
    assert r.json()["offset"] == 2
    r = await client.get("/api/v1/sessions", params={"offset": 10}, headers=auth(user))
    assert r.json()["items"] == []
    assert r.json()["total"] == 3


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}])
async def test_list_rejects_bad_paging(client, user, params):
    r = await client.get("/api/v1/sessions", params=params, headers=auth(user))
    assert_error(r, 422, "validation_error")


# --- read, rename, delete


async def test_get_rename_delete(client, user):
    sid = await new_session(client, user, "Draft")
    r = await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))
    assert r.status_code == 200
    assert r.json()["name"] == "Draft"
    created = r.json()

    r = await client.patch(f"/api/v1/sessions/{sid}", json={"name": "  Final  "}, headers=auth(user))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Final"
    assert r.json()["created_at"] == created["created_at"]
    assert datetime.fromisoformat(r.json()["updated_at"]) > datetime.fromisoformat(created["updated_at"])
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))).json()["name"] == "Final"
    assert_error(await client.patch(f"/api/v1/sessions/{sid}", json={}, headers=auth(user)), 422)

    r = await client.delete(f"/api/v1/sessions/{sid}", headers=auth(user))
    assert r.status_code == 204
    assert r.content == b""
    assert_error(await client.get(f"/api/v1/sessions/{sid}", headers=auth(user)), 404, "not_found")
    assert_error(await client.delete(f"/api/v1/sessions/{sid}", headers=auth(user)), 404, "not_found")
    assert_error(await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=auth(user)), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sessions/not-a-uuid"),
        ("PATCH", "/api/v1/sessions/not-a-uuid"),
        ("DELETE", "/api/v1/sessions/123"),
        ("GET", "/api/v1/sessions/123/messages"),
        ("DELETE", "/api/v1/sessions/zzz/messages"),
        ("POST", "/api/v1/sessions/zzz/chat"),
    ],
)
async def test_invalid_session_id_is_validation_error(client, user, method, path):
    body = {"name": "x"} if method == "PATCH" else {"message": "hi"} if method == "POST" else None
    r = await client.request(method, path, json=body, headers=auth(user))
    assert_error(r, 422, "validation_error")
    assert r.json()["detail"][0]["loc"] == ["path", "session_id"]


# --- isolation and auth


def session_routes(sid: str) -> list[tuple[str, str, dict[str, str] | None]]:
    base = f"/api/v1/sessions/{sid}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"name": "pwned"}),
        ("DELETE", base, None),
        ("GET", f"{base}/messages", None),
        ("DELETE", f"{base}/messages", None),
        ("POST", f"{base}/chat", {"message": "hi"}),
        ("POST", f"{base}/chat/stream", {"message": "hi"}),
    ]


async def test_another_user_cannot_touch_my_session(client, user):
    sid = await new_session(client, user, "Mine")
    assert (await chat(client, user, sid, "secret plans")).status_code == 200
    intruder = auth(await register(client))
    base = f"/api/v1/sessions/{sid}"
    for method, path, body in session_routes(sid):
        r = await client.request(method, path, json=body, headers=intruder)
        assert_error(r, 404, "not_found")
    listed = (await client.get("/api/v1/sessions", headers=intruder)).json()
    assert listed["total"] == 0

    assert (await client.get(base, headers=auth(user))).json()["name"] == "Mine"
    msgs = (await client.get(f"{base}/messages", headers=auth(user))).json()
    assert [m["content"] for m in msgs["items"]] == ["secret plans", "Echo: secret plans"]


async def test_every_session_route_needs_a_token(client, user):
    sid = await new_session(client, user)
    routes = [("POST", "/api/v1/sessions", {}), ("GET", "/api/v1/sessions", None), *session_routes(sid)]
    for method, path, body in routes:
        r = await client.request(method, path, json=body)
        assert_error(r, 401, "unauthorized")
        r = await client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert_error(r, 401, "unauthorized")
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))).status_code == 200


# --- transcript and checkpoints


async def test_delete_session_removes_thread_messages_and_every_checkpoint(client, user, app):
    sid = await new_session(client, user)
    assert (await chat(client, user, sid, "what is [calc:2+2]?")).status_code == 200
    tid = await thread_id(app, sid)
    before = await checkpoint_rows(app, tid)
    # Turns run with durability="exit", so a finished turn may leave no pending writes; the sum must be > 0.
    assert before["checkpoints"] > 0
    assert sum(before.values()) > 0

    assert (await client.delete(f"/api/v1/sessions/{sid}", headers=auth(user))).status_code == 204
    assert await checkpoint_rows(app, tid) == dict.fromkeys(CHECKPOINT_TABLES, 0)
    async with app.state.runtime.db.engine.connect() as conn:
        threads = await conn.execute(text("select count(*) from thread where id = :t"), {"t": tid})
        messages = await conn.execute(text("select count(*) from message where thread_id = :t"), {"t": tid})
        assert (threads.scalar_one(), messages.scalar_one()) == (0, 0)
    assert_error(await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user)), 404, "not_found")


async def test_clear_messages_forgets_the_conversation(client, user, app, fake_llm):
    sid = await new_session(client, user, "Keep me")
    for text_ in ["my name is Ada", "remember that"]:
        assert (await chat(client, user, sid, text_)).status_code == 200
    tid = await thread_id(app, sid)
    assert sum((await checkpoint_rows(app, tid)).values()) > 0

    r = await client.delete(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
    assert r.status_code == 204, r.text
    msgs = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert (msgs["items"], msgs["total"]) == ([], 0)
    assert sum((await checkpoint_rows(app, tid)).values()) == 0
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))).json()["name"] == "Keep me"

    r = await chat(client, user, sid, "fresh start")
    assert r.status_code == 200
    assert r.json()["reply"] == "Echo: fresh start"
    sent = fake_llm.chat_requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[-1]["content"] == "fresh start"
    msgs = (await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))).json()
    assert [m["content"] for m in msgs["items"]] == ["fresh start", "Echo: fresh start"]


async def test_messages_pagination(client, user):
    sid = await new_session(client, user)
    for i in range(3):
        assert (await chat(client, user, sid, f"m{i}")).status_code == 200
    url = f"/api/v1/sessions/{sid}/messages"
    full = (await client.get(url, headers=auth(user))).json()
    assert full["total"] == 6
    assert [m["content"] for m in full["items"]] == ["m0", "Echo: m0", "m1", "Echo: m1", "m2", "Echo: m2"]
    page = (await client.get(url, params={"limit": 2, "offset": 3}, headers=auth(user))).json()
    assert [m["content"] for m in page["items"]] == ["Echo: m1", "m2"]
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 3)
    for bad in [{"limit": 0}, {"limit": 101}, {"offset": -1}]:
        assert_error(await client.get(url, params=bad, headers=auth(user)), 422, "validation_error")


# --- request limits and docs


async def test_oversized_body_is_rejected_with_content_length(client, user, settings):
    payload = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
    r = await client.post("/api/v1/sessions", content=payload, headers=raw_json(user))
    assert_error(r, 413, "payload_too_large")


async def test_oversized_chunked_body_is_rejected(client, user, settings):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(settings.max_body_bytes // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    r = await client.post("/api/v1/sessions", content=chunks(), headers=raw_json(user))
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")
    listed = (await client.get("/api/v1/sessions", headers=auth(user))).json()
    assert listed["total"] == 0


@pytest.mark.parametrize("body", [b"[" * 10_000, b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000])
async def test_deeply_nested_json_is_a_client_error(client, user, body):
    r = await client.post("/api/v1/sessions", content=body, headers=raw_json(user))
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code)  # the {"error", "detail"} shape, never a bare 500


async def test_openapi_and_docs_are_served(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/sessions/{session_id}" in r.json()["paths"]
    r = await client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()
    assert (await client.get("/redoc")).status_code == 200
