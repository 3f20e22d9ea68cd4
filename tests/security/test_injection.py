"""Hostile input in every text field: a clear 4xx in the error shape, or kept verbatim, returned as JSON."""

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import PASSWORD, assert_error
from tests.security.conftest import Person, admin_person, person

# Text a free-text field must store and return exactly as sent.
VERBATIM = {
    "sql quote": '\'; DROP TABLE "user"; --',
    "sql tautology": "' OR '1'='1' --",
    "sql stacked": "Robert'); DELETE FROM chat_session WHERE ('1'='1",
    "like wildcards": "100% _sure_ \\ not a pattern",
    "placeholders": "$1 $$body$$ :name %(name)s %s {0} {{x}} ${jndi:ldap://x}",
    "html": "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>",
    "unicode": "Zoë ✓ 🚀 \u202eevil\u202c \u2028 line e\u0301 \ufeff 日本語",
    "json-looking": '{"role": "admin", "user_id": "00000000-0000-0000-0000-000000000000"}',
    "escaped nul as text": "backslash zero \\x00 and \\u0000 as text",
    "control chars": "tab\tnew\nline\rbell\x07",
    "long": "A long one." * 18,  # 198 characters: within every free-text field's limit
}

# A field's raw JSON value that must be refused with a 4xx in the error shape, and nothing stored.
REFUSED = {
    "nul": b'"a\\u0000b"',
    "lone surrogate": b'"a\\ud800b"',
    "invalid utf-8": b'"a\xff\xfeb"',
    "nested shallow": b'{"a": [[[{"b": [[["c"]]]}]]]}',
    "nested deep": b"[" * 30_000 + b"]" * 30_000,  # 60 KB, under the body limit: the parser must cope
    "not a string": b"12345",
    "nul byte in the body": b'"a"\x00',
    "too long for any field": json.dumps("x" * 60_000).encode(),
    "over the body limit": json.dumps("x" * 70_000).encode(),
}


@dataclass
class World:
    client: httpx.AsyncClient
    user: Person
    admin: Person
    target: Person  # whom the admin acts on
    ids: dict[str, str] = field(default_factory=dict)


Reader = Callable[[World, httpx.Response], Awaitable[str]]


async def _session_name(w: World, r: httpx.Response) -> str:
    got = await w.client.get(f"/api/v1/sessions/{r.json()['id']}", headers=w.user.headers)
    listed = await w.client.get("/api/v1/sessions", params={"limit": 100}, headers=w.user.headers)
    assert got.json() in listed.json()["items"]
    return str(got.json()["name"])


async def _chat_message(w: World, r: httpx.Response) -> str:
    got = await w.client.get(
        f"/api/v1/sessions/{w.ids['session_id']}/messages", params={"limit": 100}, headers=w.user.headers
    )
    items = got.json()["items"]
    assert items[-1]["role"] == "assistant" and items[-2]["role"] == "user", items
    assert items[-1]["content"] == "Echo: " + items[-2]["content"]  # the fake model saw it unchanged too
    return str(items[-2]["content"])


async def _memory_text(w: World, r: httpx.Response) -> str:
    got = await w.client.get(f"/api/v1/memories/{r.json()['id']}", headers=w.user.headers)
    return str(got.json()["text"])


@dataclass(frozen=True)
class JsonField:
    method: str
    url: str  # formatted with the World's ids
    name: str  # the field under test
    others: Callable[[], dict[str, Any]] = dict  # the rest of a valid body
    caller: str = (
        "user"  # "user", "admin", "nobody", or "fresh": a new user each time (it acts on its account)
    )
    read_back: Reader | None = None  # None: not stored as text (it is refused, or a password)


NEW_PASSWORD = "N3w!password"


def _fresh_email() -> dict[str, Any]:
    return {"email": f"inj-{uuid.uuid4().hex[:10]}@example.com"}


JSON_FIELDS: dict[str, JsonField] = {
    "register email": JsonField(
        "POST", "/api/v1/auth/register", "email", lambda: {"password": PASSWORD}, "nobody"
    ),
    "register password": JsonField("POST", "/api/v1/auth/register", "password", _fresh_email, "nobody"),
    "session name": JsonField("POST", "/api/v1/sessions", "name", read_back=_session_name),
    "session rename": JsonField("PATCH", "/api/v1/sessions/{session_id}", "name", read_back=_session_name),
    "chat message": JsonField(
        "POST", "/api/v1/sessions/{session_id}/chat", "message", read_back=_chat_message
    ),
    "stream message": JsonField(
        "POST", "/api/v1/sessions/{session_id}/chat/stream", "message", read_back=_chat_message
    ),
    "memory text": JsonField("POST", "/api/v1/memories", "text", read_back=_memory_text),
    "memory edit": JsonField("PATCH", "/api/v1/memories/{memory_id}", "text", read_back=_memory_text),
    "admin password reset": JsonField(
        "POST", "/api/v1/admin/users/{target_id}/password", "password", caller="admin"
    ),
    "admin role": JsonField("PATCH", "/api/v1/admin/users/{target_id}/role", "role", caller="admin"),
    "refresh token": JsonField("POST", "/api/v1/auth/refresh", "refresh_token", caller="nobody"),
    "password change current": JsonField(
        "POST", "/api/v1/auth/password", "current_password", lambda: {"new_password": NEW_PASSWORD}, "fresh"
    ),
    "password change new": JsonField(
        "POST", "/api/v1/auth/password", "new_password", lambda: {"current_password": PASSWORD}, "fresh"
    ),
}
FREE_TEXT = [name for name, f in JSON_FIELDS.items() if f.read_back is not None]

# Query parameters that take text: (url, parameter, caller).
QUERY_FIELDS = {
    "memory search": ("/api/v1/memories/search", "q", "user"),
    "admin user search": ("/api/v1/admin/users", "email", "admin"),
    "admin audit action": ("/api/v1/admin/audit", "action", "admin"),
    "session paging": ("/api/v1/sessions", "limit", "user"),
}


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    w = World(client, await person(client), await admin_person(app, client), await person(client))
    w.ids["target_id"] = w.target.id
    r = await client.post("/api/v1/sessions", json={"name": "injection"}, headers=w.user.headers)
    w.ids["session_id"] = r.json()["id"]
    r = await client.post("/api/v1/memories", json={"text": "a first fact"}, headers=w.user.headers)
    w.ids["memory_id"] = r.json()["id"]
    return w


def json_body(spec: JsonField, raw_value: bytes) -> bytes:
    parts = [json.dumps(k).encode() + b": " + json.dumps(v).encode() for k, v in spec.others().items()]
    parts.append(json.dumps(spec.name).encode() + b": " + raw_value)
    return b"{" + b", ".join(parts) + b"}"


async def send_json(w: World, spec: JsonField, raw_value: bytes) -> tuple[httpx.Response, Person | None]:
    """The request, and who sent it."""
    callers = {"user": w.user, "admin": w.admin, "nobody": None}
    caller = await person(w.client) if spec.caller == "fresh" else callers[spec.caller]
    headers = {"Content-Type": "application/json", **(caller.headers if caller else {})}
    url = spec.url.format(**w.ids)
    r = await w.client.request(spec.method, url, content=json_body(spec, raw_value), headers=headers)
    return r, caller


def encoded(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def assert_safe_json(r: httpx.Response) -> None:
    """Never a 5xx, and always JSON: a browser never renders an echoed payload as a page."""
    assert r.status_code < 500, r.text
    if r.status_code == 204:
        return
    content_type = r.headers.get("content-type", "")
    assert content_type.startswith(("application/json", "text/event-stream")), (r.status_code, content_type)
    if r.status_code >= 400:
        assert_error(r, r.status_code)


async def what_the_user_has(w: World) -> list[Any]:
    sid = w.ids["session_id"]
    seen = []
    for path in ("/api/v1/sessions", "/api/v1/memories", f"/api/v1/sessions/{sid}/messages"):
        r = await w.client.get(path, params={"limit": 100}, headers=w.user.headers)
        seen.append(r.json())
    return seen


@pytest.mark.parametrize("name", FREE_TEXT)
async def test_free_text_is_stored_and_returned_verbatim(world, name):
    spec = JSON_FIELDS[name]
    wrong = []
    for label, text in VERBATIM.items():
        r, _ = await send_json(world, spec, encoded(text))
        assert_safe_json(r)
        if r.status_code >= 300:
            wrong.append(f"{label}: refused with {r.status_code} {r.text}")
            continue
        if "text/event-stream" in r.headers["content-type"]:
            assert "event: done" in r.text, r.text
        assert spec.read_back is not None
        stored = await spec.read_back(world, r)
        if stored != text:
            wrong.append(f"{label}: stored {stored!r}, sent {text!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(JSON_FIELDS))
async def test_refused_input_is_a_clear_4xx_and_stores_nothing(world, name):
    spec = JSON_FIELDS[name]
    before = await what_the_user_has(world)
    for label, raw in REFUSED.items():
        r, _ = await send_json(world, spec, raw)
        assert 400 <= r.status_code < 500, (label, r.status_code, r.text)
        assert_safe_json(r)
        if label == "over the body limit":
            assert_error(r, 413, "payload_too_large")
    assert await what_the_user_has(world) == before


async def can_log_in(w: World, email: str, password: str) -> bool:
    r = await w.client.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


@pytest.mark.parametrize("name", sorted(set(JSON_FIELDS) - set(FREE_TEXT)))
async def test_constrained_fields_refuse_hostile_text_or_keep_it_exactly(world, name):
    spec = JSON_FIELDS[name]
    for label, text in VERBATIM.items():
        # The password policy wants every character class: add them, so the text itself is what is tested.
        value = text + "Aa1!" if name.endswith(("password", "reset", "new")) else text
        if spec.caller == "admin":  # a fresh target each time: failed log-ins lock an account out
            world.target = await person(world.client)
            world.ids["target_id"] = world.target.id
        r, caller = await send_json(world, spec, encoded(value))
        assert_safe_json(r)
        if r.status_code >= 400:
            # Refused as input (422), or as a wrong credential (401; 403 for a wrong current password).
            assert r.status_code in (401, 403, 422), (label, r.text)
            continue
        sent = json.loads(r.request.content)
        if name == "register email":
            assert r.json()["email"] == value.lower()
            assert await can_log_in(world, value, PASSWORD), label
        elif name in ("register password", "admin password reset", "password change new"):
            email = {"register password": sent.get("email"), "admin password reset": world.target.email}.get(
                name, caller.email if caller else ""
            )
            assert await can_log_in(world, email, value), label
            assert not await can_log_in(world, email, text), label
        else:
            pytest.fail(f"{name} accepted {value!r}: {r.text}")


async def test_login_form_fields_never_crash(world):
    """Hostile usernames and passwords are refused in the error shape and never sign anyone in."""
    values = [
        *VERBATIM.values(),
        "a\x00b",
        "x" * 60_000,
        world.user.email + "' --",
        world.user.email + "\x00",
    ]
    for value in values:
        for form in (
            {"username": value, "password": PASSWORD},
            {"username": world.user.email, "password": value},
        ):
            r = await world.client.post("/api/v1/auth/login", data=form)
            # 429: the account under attack locks after repeated failures.
            assert r.status_code in (401, 422, 429), (form, r.text)
            assert_safe_json(r)
    # Raw bodies: undecodable bytes, percent-encoded ones, NUL, and JSON where a form is expected.
    email = quote(world.user.email).encode()
    for raw in [
        b"username=" + email + b"&password=\xff\xfe",
        b"username=\xff\xfe&password=x",
        b"username=" + email + b"&password=%ff%fe%00",
        b"username=%C0%80&password=%ED%A0%80",  # overlong NUL, a UTF-8-encoded surrogate
        b"username=a&username=b&password=x&password=y",
        b"\x00\x01\x02",
    ]:
        r = await world.client.post(
            "/api/v1/auth/login", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert r.status_code in (400, 401, 422, 429), (raw, r.text)
        assert_safe_json(r)
    r = await world.client.post(
        "/api/v1/auth/login", json={"username": world.user.email, "password": PASSWORD}
    )
    assert_error(r, 422)


@pytest.mark.parametrize("name", sorted(QUERY_FIELDS))
async def test_query_text_never_crashes(world, name):
    url, param, caller = QUERY_FIELDS[name]
    headers = (world.admin if caller == "admin" else world.user).headers
    for value in [*VERBATIM.values(), "a\x00b", "x" * 60_000]:
        r = await world.client.get(url, params={param: value}, headers=headers)
        assert_safe_json(r)
        if r.status_code == 200 and param in ("q", "email"):
            items = r.json()["items"]
            if param == "email":  # a substring, matched literally: no wildcard, no injected condition
                assert all(value.lower() in u["email"] for u in items), (value, items)
            else:
                assert len(items) <= 1  # the user has one memory; the query's text cannot widen the search
    # Percent-encoded bytes that are not UTF-8, straight in the query string.
    for raw in ["%ff%fe", "%00", "%ED%A0%80", "%C0%80", "%"]:
        r = await world.client.get(f"{url}?{param}={raw}", headers=headers)
        assert_safe_json(r)


async def test_hostile_text_in_the_path_and_headers_never_crashes(world):
    for path in [
        "/api/v1/sessions/' OR '1'='1",
        "/api/v1/sessions/%ff%fe",
        "/api/v1/sessions/%00",
        "/api/v1/memories/..%2f..%2fadmin%2fusers",
        "/api/v1/admin/users/%ED%A0%80",
    ]:
        caller = world.admin if "/admin/" in path else world.user
        r = await world.client.get(path, headers=caller.headers)
        assert 400 <= r.status_code < 500, (path, r.text)
        assert_safe_json(r)
    for value in [b"Bearer \xff\xfe", b"Bearer ' OR '1'='1", b"Bearer " + b"A" * 20_000, b"\x00"]:
        r = await world.client.get("/api/v1/auth/me", headers={"Authorization": value})
        assert_error(r, 401, "unauthorized")
