"""Who may call what: every route of the OpenAPI schema, as a stranger, two users and an admin.

The route table below must name every operation the schema serves. A route added without a line here
fails `test_every_route_is_classified`, so nobody ships an endpoint whose access nobody decided.
"""

import asyncio
import copy
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import PASSWORD, assert_error
from tests.security.conftest import Person, admin_person, person

PUBLIC = "public"  # anyone, no token
USER = "user"  # a signed-in user, on their own objects only; someone else's object is a 404
ADMIN = "admin"  # admins only: 401 without a token, 403 for a user

# httpx keyword arguments (json=, data=, params=), or a function of the client and the caller making them.
Body = dict[str, Any] | Callable[[httpx.AsyncClient, Person], Awaitable[dict[str, Any]]] | None


@dataclass(frozen=True)
class Rule:
    access: str
    body: Body = None
    # The route acts on the caller's own login or account (log out, change the password, delete the
    # account): the collection check runs it as a throwaway user.
    destructive_to_caller: bool = False
    # The route acts on a run waiting for approval (resume): the victim's {run_id} is one.
    waiting_run: bool = False
    ok: int | None = None  # the owner's status, when not the route's lowest 2xx
    # The object is the same for every user (the agent protocol's one assistant): any signed-in user reads it.
    shared: bool = False


async def _login_form(_: httpx.AsyncClient, caller: Person) -> dict[str, Any]:
    return {"data": {"username": caller.email, "password": PASSWORD}}


async def _register(_: httpx.AsyncClient, caller: Person) -> dict[str, Any]:
    return {"json": {"email": f"matrix-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}}


async def _refresh(client: httpx.AsyncClient, caller: Person) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/login", data={"username": caller.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"json": {"refresh_token": r.json()["refresh_token"]}}


async def _search(_: httpx.AsyncClient, caller: Person) -> dict[str, Any]:
    return {"params": {"q": "secret"}}  # the collection check searches for the victim's words instead


NEW_PASSWORD = "N3w!password"
# A run of LangGraph's Agent Protocol (docs/agent-protocol.md) on the thread in the path.
PROTOCOL_RUN = {"json": {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}}

ROUTES: dict[str, Rule] = {
    "GET /health": Rule(PUBLIC),
    "GET /ready": Rule(PUBLIC),
    "GET /api/v1/health": Rule(PUBLIC),
    "GET /api/v1/ready": Rule(PUBLIC),
    "POST /api/v1/auth/register": Rule(PUBLIC, _register),
    "POST /api/v1/auth/login": Rule(PUBLIC, _login_form),
    # The refresh token in the body is the credential; token attacks are tests/api/test_tokens*.py's.
    "POST /api/v1/auth/refresh": Rule(PUBLIC, _refresh),
    "POST /api/v1/auth/logout": Rule(USER, destructive_to_caller=True),
    "POST /api/v1/auth/password": Rule(
        USER,
        {"json": {"current_password": PASSWORD, "new_password": NEW_PASSWORD}},
        destructive_to_caller=True,
    ),
    "GET /api/v1/auth/me": Rule(USER),
    "GET /api/v1/auth/me/export": Rule(USER),
    "DELETE /api/v1/auth/me": Rule(USER, destructive_to_caller=True),
    "POST /api/v1/sessions": Rule(USER, {"json": {"name": "matrix"}}),
    "GET /api/v1/sessions": Rule(USER),
    "GET /api/v1/sessions/search": Rule(USER, _search),
    "GET /api/v1/sessions/{session_id}": Rule(USER),
    "PATCH /api/v1/sessions/{session_id}": Rule(USER, {"json": {"name": "renamed by caller"}}),
    "DELETE /api/v1/sessions/{session_id}": Rule(USER),
    "GET /api/v1/sessions/{session_id}/messages": Rule(USER),
    "DELETE /api/v1/sessions/{session_id}/messages": Rule(USER),
    "PUT /api/v1/sessions/{session_id}/messages/{message_id}/feedback": Rule(
        USER, {"json": {"rating": "down", "comment": "rated by the caller"}}
    ),
    "DELETE /api/v1/sessions/{session_id}/messages/{message_id}/feedback": Rule(USER),
    "POST /api/v1/sessions/{session_id}/chat": Rule(USER, {"json": {"message": "hello from the caller"}}),
    "POST /api/v1/sessions/{session_id}/chat/stream": Rule(
        USER, {"json": {"message": "hello from the caller"}}
    ),
    # 202 for a background run; 200 is the stream of `stream: true`.
    "POST /api/v1/sessions/{session_id}/runs": Rule(
        USER, {"json": {"message": "hello from the caller"}}, ok=202
    ),
    "GET /api/v1/sessions/{session_id}/runs": Rule(USER),
    "GET /api/v1/sessions/{session_id}/runs/{run_id}": Rule(USER),
    "GET /api/v1/sessions/{session_id}/runs/{run_id}/stream": Rule(USER),
    # The victim's run has finished: its cancel answers 200 with the run unchanged.
    "POST /api/v1/sessions/{session_id}/runs/{run_id}/cancel": Rule(USER),
    # The victim's run waits for approval (OBJECTS makes it so for this route); the caller rejects it.
    "POST /api/v1/sessions/{session_id}/runs/{run_id}/resume": Rule(
        USER, {"json": {"decision": "reject", "reason": "not now"}}, waiting_run=True
    ),
    "GET /api/v1/sessions/{session_id}/history": Rule(USER),
    # The agent protocol: a thread is a session (its thread_id the session's id).
    "GET /info": Rule(PUBLIC),
    "POST /assistants/search": Rule(USER, {"json": {"limit": 10}}),
    "GET /assistants/{assistant_id}": Rule(USER, shared=True),
    "POST /threads": Rule(USER, {"json": {"metadata": {"from": "the caller"}}}),
    "POST /threads/search": Rule(USER, {"json": {"limit": 100}}),
    "GET /threads/{thread_id}": Rule(USER),
    "DELETE /threads/{thread_id}": Rule(USER),
    "GET /threads/{thread_id}/state": Rule(USER),
    "GET /threads/{thread_id}/state/{checkpoint_id}": Rule(USER),
    "POST /threads/{thread_id}/history": Rule(USER, {"json": {"limit": 10}}),
    "POST /threads/{thread_id}/runs": Rule(USER, PROTOCOL_RUN),
    "POST /threads/{thread_id}/runs/stream": Rule(USER, PROTOCOL_RUN),
    "POST /threads/{thread_id}/runs/wait": Rule(USER, PROTOCOL_RUN),
    "GET /threads/{thread_id}/runs": Rule(USER),
    "GET /threads/{thread_id}/runs/{run_id}": Rule(USER),
    "GET /threads/{thread_id}/runs/{run_id}/join": Rule(USER),
    "GET /threads/{thread_id}/runs/{run_id}/stream": Rule(USER),
    # The victim's run has finished: the cancel leaves it unchanged (202).
    "POST /threads/{thread_id}/runs/{run_id}/cancel": Rule(USER),
    "GET /api/v1/memories": Rule(USER),
    "POST /api/v1/memories": Rule(USER, {"json": {"text": "The caller drinks green tea"}}),
    "DELETE /api/v1/memories": Rule(USER),
    "GET /api/v1/memories/search": Rule(USER, _search),
    "GET /api/v1/memories/{memory_id}": Rule(USER),
    "PATCH /api/v1/memories/{memory_id}": Rule(USER, {"json": {"text": "rewritten by the caller"}}),
    "DELETE /api/v1/memories/{memory_id}": Rule(USER),
    "GET /api/v1/memories/{memory_id}/history": Rule(USER),
    "GET /api/v1/admin/overview": Rule(ADMIN),
    "GET /api/v1/admin/users": Rule(ADMIN),
    "GET /api/v1/admin/users/{user_id}": Rule(ADMIN),
    "DELETE /api/v1/admin/users/{user_id}": Rule(ADMIN),
    "POST /api/v1/admin/users/{user_id}/disable": Rule(ADMIN),
    "POST /api/v1/admin/users/{user_id}/enable": Rule(ADMIN),
    "POST /api/v1/admin/users/{user_id}/password": Rule(ADMIN, {"json": {"password": NEW_PASSWORD}}),
    "PATCH /api/v1/admin/users/{user_id}/role": Rule(ADMIN, {"json": {"role": "admin"}}),
    "PUT /api/v1/admin/users/{user_id}/quota": Rule(
        ADMIN, {"json": {"messages_per_day": 5, "tokens_per_day": None}}
    ),
    "GET /api/v1/admin/users/{user_id}/sessions": Rule(ADMIN),
    "GET /api/v1/admin/audit": Rule(ADMIN),
}

# Served but kept out of the schema on purpose: FastAPI's documentation, and Prometheus' scrape
# endpoint (public on the app port; the README says to block it at the proxy).
UNLISTED_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics"}


def schema_routes(app: FastAPI) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }


def success_status(operation: dict[str, Any]) -> int:
    return min(int(code) for code in operation["responses"] if code.startswith("2"))


def path_params(route: str) -> list[str]:
    return re.findall(r"{(\w+)}", route)


async def request_kwargs(client: httpx.AsyncClient, rule: Rule, caller: Person) -> dict[str, Any]:
    body = await rule.body(client, caller) if callable(rule.body) else rule.body
    return copy.deepcopy(body or {})


# --- the victim's objects, one fresh set per route so destructive routes leave the next check a clean slate


@dataclass
class Victim:
    who: Person
    ids: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # text that must never reach anyone else


async def _session(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    r = await client.post(
        "/api/v1/sessions", json={"name": f"secret session {marker}"}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = await client.post(
        f"/api/v1/sessions/{sid}/chat", json={"message": f"secret plans {marker}"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    return str(sid)


async def _memory(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    r = await client.post("/api/v1/memories", json={"text": f"My secret is {marker}"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _message(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    """The reply in the owner's newest session (made just before, for {session_id}), rated by them."""
    r = await client.get("/api/v1/sessions", headers=owner.headers)
    sid = r.json()["items"][0]["id"]
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=owner.headers)
    [reply] = [m["id"] for m in r.json()["items"] if m["role"] == "assistant"]
    r = await client.put(
        f"/api/v1/sessions/{sid}/messages/{reply}/feedback",
        json={"rating": "up", "comment": f"secret feedback {marker}"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    return str(reply)


async def _run(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    """A finished run in the owner's newest session (made just before, for {session_id})."""
    r = await client.get("/api/v1/sessions", headers=owner.headers)
    sid = r.json()["items"][0]["id"]
    r = await client.post(
        f"/api/v1/sessions/{sid}/runs", json={"message": f"secret run {marker}"}, headers=owner.headers
    )
    assert r.status_code == 202, r.text
    run_id = str(r.json()["id"])
    for _ in range(200):  # bounded: 10 s
        r = await client.get(f"/api/v1/sessions/{sid}/runs/{run_id}", headers=owner.headers)
        if r.json()["status"] == "success":
            return run_id
        await asyncio.sleep(0.05)
    raise AssertionError(r.text)


async def _waiting_run(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    """A run of the owner's newest session waiting for approval of a tool call."""
    r = await client.get("/api/v1/sessions", headers=owner.headers)
    sid = r.json()["items"][0]["id"]
    message = f'remember [tool:remember_this:{{"fact": "secret {marker}"}}]'
    r = await client.post(f"/api/v1/sessions/{sid}/runs", json={"message": message}, headers=owner.headers)
    assert r.status_code == 202, r.text
    run_id = str(r.json()["id"])
    for _ in range(200):  # bounded: 10 s
        r = await client.get(f"/api/v1/sessions/{sid}/runs/{run_id}", headers=owner.headers)
        if r.json()["status"] == "interrupted":
            return run_id
        await asyncio.sleep(0.05)
    raise AssertionError(r.text)


async def _user(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    return owner.id


async def _checkpoint(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    """The checkpoint of the last turn of the owner's newest thread (made just before, for {thread_id})."""
    r = await client.get("/api/v1/sessions", headers=owner.headers)
    sid = r.json()["items"][0]["id"]
    r = await client.get(f"/threads/{sid}/state", headers=owner.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["checkpoint"]["checkpoint_id"])


async def _assistant(client: httpx.AsyncClient, owner: Person, marker: str) -> str:
    return "agent"


# Which object a path parameter names, and how to make one owned by the victim.
OBJECTS: dict[str, Callable[[httpx.AsyncClient, Person, str], Awaitable[str]]] = {
    "session_id": _session,
    "memory_id": _memory,
    "message_id": _message,
    "run_id": _run,
    "user_id": _user,
    "thread_id": _session,  # the agent protocol's name for a session
    "checkpoint_id": _checkpoint,
    "assistant_id": _assistant,
}


async def make_victim(client: httpx.AsyncClient, params: list[str], rule: Rule | None = None) -> Victim:
    victim = Victim(await person(client))
    marker = uuid.uuid4().hex
    victim.secrets += [marker, victim.who.email]
    for param in params:
        assert param in OBJECTS, f"path parameter {{{param}}} names an object this matrix does not know"
        make = _waiting_run if param == "run_id" and rule is not None and rule.waiting_run else OBJECTS[param]
        victim.ids[param] = await make(client, victim.who, marker)
    return victim


async def snapshot(client: httpx.AsyncClient, victim: Victim) -> list[Any]:
    """What the victim sees of their objects; unchanged after every attack."""
    seen: list[Any] = []
    for param, oid in victim.ids.items():
        if param in ("session_id", "thread_id"):
            for path in (f"/api/v1/sessions/{oid}", f"/api/v1/sessions/{oid}/messages"):
                r = await client.get(path, headers=victim.who.headers)
                assert r.status_code == 200, r.text
                seen.append(r.json())
        elif param == "memory_id":
            r = await client.get(f"/api/v1/memories/{oid}", headers=victim.who.headers)
            assert r.status_code == 200, r.text
            seen.append(r.json())
    me = await client.get("/api/v1/auth/me", headers=victim.who.headers)
    assert me.status_code == 200, me.text
    seen.append(me.json())
    return seen


def assert_error_response(r: httpx.Response, status: int, error: str) -> httpx.Response:
    assert_error(r, status, error)
    return r


def assert_no_leak(r: httpx.Response, victim: Victim) -> None:
    for secret in victim.secrets:
        assert secret not in r.text, (r.request.method, r.request.url, r.text)


def test_every_route_is_classified(app):
    served = set(schema_routes(app))
    unclassified = served - set(ROUTES)
    assert not unclassified, f"routes without an access rule in ROUTES: {sorted(unclassified)}"
    stale = set(ROUTES) - served
    assert not stale, f"ROUTES names routes the app no longer serves: {sorted(stale)}"
    for route, operation in schema_routes(app).items():
        if ROUTES[route].access != PUBLIC:
            assert operation.get("security"), f"{route} needs a token but the schema does not say so"
        if "requestBody" in operation:
            assert ROUTES[route].body is not None, f"{route} takes a body: give it one in ROUTES"


def test_public_routes_do_not_claim_to_need_a_token(app):
    claimed = [
        route
        for route, operation in schema_routes(app).items()
        if ROUTES.get(route, Rule(USER)).access == PUBLIC and operation.get("security")
    ]
    assert not claimed, claimed


def test_no_route_hides_outside_the_schema(app):
    listed = set(app.openapi()["paths"])
    hidden = {getattr(r, "path", None) for r in app.routes} - listed - {None}
    assert hidden <= UNLISTED_PATHS, f"routes served outside the schema: {sorted(hidden - UNLISTED_PATHS)}"


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_route_matrix(app, client, route):
    operations = schema_routes(app)
    if route not in operations:
        pytest.fail(f"{route} is in ROUTES but not served")
    rule = ROUTES[route]
    ok = rule.ok or success_status(operations[route])
    method, template = route.split(" ", 1)
    params = path_params(template)
    victim = await make_victim(client, params, rule)
    url = template.format(**victim.ids)
    bob = await person(client)
    admin = await admin_person(app, client)

    async def call(caller: Person | None, kwargs_for: Person) -> httpx.Response:
        headers = caller.headers if caller else {}
        return await client.request(
            method, url, headers=headers, **await request_kwargs(client, rule, kwargs_for)
        )

    before = await snapshot(client, victim)

    if rule.access == PUBLIC:
        r = await call(None, victim.who)
        assert r.status_code == ok, r.text
        return

    # A stranger is turned away before anything else.
    assert_no_leak(assert_error_response(await call(None, victim.who), 401, "unauthorized"), victim)

    if rule.access == ADMIN:
        # Users get 403 whoever the target is: someone else, or themselves (promoting oneself included).
        for target in (victim.who, bob):
            target_url = template.format(**{p: target.id for p in params})
            r = await client.request(
                method, target_url, headers=bob.headers, **await request_kwargs(client, rule, target)
            )
            assert_no_leak(assert_error_response(r, 403, "forbidden"), victim)
        assert await snapshot(client, victim) == before
        r = await call(admin, victim.who)
        assert r.status_code == ok, r.text
        return

    if rule.shared:
        for caller in (bob, admin, victim.who):
            r = await call(caller, caller)
            assert r.status_code == ok, r.text
        return

    # USER routes. Someone else's object looks missing: to the other user and to an admin alike
    # (admins see other users' data through /admin only).
    if params:
        for intruder in (bob, admin):
            r = await call(intruder, intruder)
            assert_no_leak(assert_error_response(r, 404, "not_found"), victim)
        assert await snapshot(client, victim) == before
        r = await call(victim.who, victim.who)
        assert r.status_code == ok, r.text
        return

    # Collection routes act on the caller's own objects; whatever they answer shows nothing of the victim's.
    victim.ids["session_id"] = await _session(client, victim.who, victim.secrets[0])
    victim.ids["memory_id"] = await _memory(client, victim.who, victim.secrets[0])
    before = await snapshot(client, victim)
    caller = await person(client) if rule.destructive_to_caller else bob
    kwargs = await request_kwargs(client, rule, caller)
    if "q" in kwargs.get("params", {}):
        # The victim's exact words: an unscoped search would rank their memory first.
        kwargs["params"]["q"] = f"My secret is {victim.secrets[0]}"
    r = await client.request(method, url, headers=caller.headers, **kwargs)
    assert r.status_code == ok, r.text
    assert_no_leak(r, victim)
    assert await snapshot(client, victim) == before


async def test_admins_reach_other_users_through_admin_routes_only(app, client, alice):
    admin = await admin_person(app, client)
    sid = await _session(client, alice, "for-the-admin")
    r = await client.get(f"/api/v1/admin/users/{alice.id}/sessions", headers=admin.headers)
    assert r.status_code == 200 and [s["id"] for s in r.json()["items"]] == [sid]
    r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=admin.headers)
    assert_error(r, 404, "not_found")
    # Nothing of the admin's own view mixes in other users' objects either.
    assert (await client.get("/api/v1/sessions", headers=admin.headers)).json()["total"] == 0
