"""The admin API: who may call it, bad input, finding users, usage and the audit log."""

import uuid
from datetime import datetime, timedelta

import pytest

from tests.conftest import PASSWORD, assert_error, auth, new_session, register, register_admin

A = "/api/v1/admin"
NOBODY = "00000000-0000-4000-8000-000000000000"

# Every admin route, with a body that would be valid: the refusal must come from who is asking.
ROUTES = [
    ("GET", "/overview", None),
    ("GET", "/users", None),
    ("GET", "/users/{id}", None),
    ("POST", "/users/{id}/disable", None),
    ("POST", "/users/{id}/enable", None),
    ("POST", "/users/{id}/password", {"password": "N3w!password"}),
    ("PATCH", "/users/{id}/role", {"role": "admin"}),
    ("PUT", "/users/{id}/quota", {"messages_per_day": 5, "tokens_per_day": None}),
    ("DELETE", "/users/{id}", None),
    ("GET", "/users/{id}/sessions", None),
    ("GET", "/audit", None),
]


@pytest.fixture
async def admin(app, client):
    return await register_admin(app, client)


async def user_id(client, headers) -> str:
    return str((await client.get("/api/v1/auth/me", headers=auth(headers))).json()["id"])


def test_the_route_table_covers_every_admin_route(app):
    served = {
        (method.upper(), path.removeprefix(A).replace("{user_id}", "{id}"))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(A + "/")
        for method in operations
    }
    assert served == {(method, path) for method, path, _ in ROUTES}


async def test_plain_users_get_403_and_strangers_401_on_every_admin_route(client, user, admin):
    target = await register(client)
    target_id = await user_id(client, target)
    for method, path, body in ROUTES:
        url = A + path.format(id=target_id)
        r = await client.request(method, url, json=body)
        assert_error(r, 401, "unauthorized")
        r = await client.request(method, url, json=body, headers=auth(user))
        assert assert_error(r, 403, "forbidden")["detail"], (method, path)
    # Nothing happened to the target on the way.
    me = await client.get("/api/v1/auth/me", headers=auth(target))
    assert me.status_code == 200 and me.json()["role"] == "user"
    r = await client.get(f"{A}/audit", params={"target_id": target_id}, headers=auth(admin))
    assert r.json()["total"] == 0


async def test_me_shows_the_role(client, user, admin):
    assert (await client.get("/api/v1/auth/me", headers=auth(user))).json()["role"] == "user"
    assert (await client.get("/api/v1/auth/me", headers=auth(admin))).json()["role"] == "admin"


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "hashed_password"},
        {"sort": "created_at; DROP TABLE user"},
        {"order": "sideways"},
        {"sort": "-hashed_password"},
        {"sort": "--email"},
        {"sort": "-email", "order": "asc"},
        {"role": "root"},
        {"is_active": "maybe"},
        {"created_after": "yesterday"},
        {"created_after": "2026-02-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"email": "a\x00b"},
    ],
)
async def test_bad_list_parameters_are_422(client, admin, params):
    assert_error(await client.get(f"{A}/users", params=params, headers=auth(admin)), 422, "validation_error")


async def test_bad_ids_and_bodies_are_422_and_unknown_users_404(client, admin):
    h = auth(admin)
    for method, path, body in ROUTES:
        if "{id}" in path:
            r = await client.request(method, A + path.format(id="not-a-uuid"), json=body, headers=h)
            assert_error(r, 422, "validation_error")
            r = await client.request(method, A + path.format(id=NOBODY), json=body, headers=h)
            assert assert_error(r, 404, "not_found")["detail"] == "User not found", (method, path)
    target = await user_id(client, await register(client))
    for body in ({"role": "superuser"}, {"role": None}, {}):
        assert_error(await client.patch(f"{A}/users/{target}/role", json=body, headers=h), 422)
    for body in ({"password": "short"}, {"password": "alllowercase1!"}, {"password": "A1!" + "a" * 200}, {}):
        assert_error(await client.post(f"{A}/users/{target}/password", json=body, headers=h), 422)
    for params in ({"action": "user.hacked"}, {"actor_id": "x"}, {"target_id": "1"}):
        assert_error(await client.get(f"{A}/audit", params=params, headers=h), 422)


async def test_search_filters_sorts_and_pages(client, admin):
    h, tag = auth(admin), uuid.uuid4().hex[:12]
    emails = [f"{tag}-carol@example.com", f"{tag}_alice@example.com", f"{tag}xbob@example.com"]
    made = []
    for email in emails:
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": "Str0ng!pass"})
        made.append(r.json())

    async def found(**params):
        r = await client.get(f"{A}/users", params={"email": tag, **params}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    page = await found()
    assert page["total"] == 3 and [u["email"] for u in page["items"]] == emails[::-1]  # newest first
    assert set(page["items"][0]) == {
        "id",
        "email",
        "role",
        "is_active",
        "created_at",
        "last_active",
        "last_active_at",
        "last_message_at",
        "daily_message_quota",
        "daily_token_quota",
    }
    # Case-insensitive, and "_" is a character, not a LIKE wildcard.
    assert (await found(email=tag.upper()))["total"] == 3
    assert [u["email"] for u in (await found(email=f"{tag}_"))["items"]] == [emails[1]]
    assert (await found(email=f"{tag}%"))["total"] == 0
    by_email = await found(sort="email", order="asc")
    assert [u["email"] for u in by_email["items"]] == sorted(emails)
    for params, expected in (
        ({"sort": "email"}, sorted(emails)),  # a key alone ascends
        ({"sort": "-email"}, sorted(emails, reverse=True)),
        ({"sort": "email", "order": "desc"}, sorted(emails, reverse=True)),
        ({"sort": "-created_at", "order": "desc"}, emails[::-1]),
        ({"sort": "created_at"}, emails),
    ):
        assert [u["email"] for u in (await found(**params))["items"]] == expected, params
    first = await found(sort="email", order="asc", limit=2)
    rest = await found(sort="email", order="asc", limit=2, offset=2)
    assert first["total"] == rest["total"] == 3 and len(first["items"]) == 2
    assert [u["email"] for u in first["items"] + rest["items"]] == sorted(emails)
    # Created range: after is inclusive, before exclusive.
    window = await found(created_after=made[1]["created_at"], created_before=made[2]["created_at"])
    assert [u["email"] for u in window["items"]] == [emails[1]]
    naive = datetime.fromisoformat(made[0]["created_at"]).replace(tzinfo=None) - timedelta(hours=1)
    assert (await found(created_after=naive.isoformat()))["total"] == 3  # naive means UTC

    await client.patch(f"{A}/users/{made[0]['id']}/role", json={"role": "admin"}, headers=h)
    await client.post(f"{A}/users/{made[2]['id']}/disable", headers=h)
    assert [u["email"] for u in (await found(role="admin"))["items"]] == [emails[0]]
    assert [u["email"] for u in (await found(is_active="false"))["items"]] == [emails[2]]
    assert (await found(role="user", is_active="true"))["total"] == 1


async def test_usage_and_last_active(client, admin):
    h, tag = auth(admin), uuid.uuid4().hex[:12]
    idle, busy, busier = [await register(client, f"{tag}-{name}@example.com") for name in ("a", "b", "c")]
    sent = {"input_tokens": 0, "output_tokens": 0}
    for person, sessions in ((busy, 1), (busier, 2)):
        for n in range(sessions):
            sid = await new_session(client, person)
            for text in ("hi", "[calc:6*7]")[: n + 1]:
                r = await client.post(
                    f"/api/v1/sessions/{sid}/chat", json={"message": text}, headers=auth(person)
                )
                assert r.status_code == 200, r.text
                if person is busier:
                    sent = {k: v + r.json()[k] for k, v in sent.items()}
    assert sent["input_tokens"] > 0 and sent["output_tokens"] > 0

    busier_id = await user_id(client, busier)
    detail = (await client.get(f"{A}/users/{busier_id}", headers=h)).json()
    today = {f"{k}_today": v for k, v in sent.items()}
    assert detail["usage"] == {"sessions": 2, "messages": 6, **sent, **today}
    assert detail["role"] == "user" and detail["is_active"] is True
    assert detail["quota"]["messages_today"] == 3
    assert detail["quota"]["tokens_today"] == sent["input_tokens"] + sent["output_tokens"]
    created, last_message = (datetime.fromisoformat(detail[k]) for k in ("created_at", "last_message_at"))
    assert last_message > created and detail["last_active"] == detail["last_message_at"]
    assert detail["last_active_at"] == detail["last_message_at"]  # the chat came after the log-in
    idle_id = await user_id(client, idle)
    empty = (await client.get(f"{A}/users/{idle_id}", headers=h)).json()
    assert empty["usage"] == {
        "sessions": 0,
        "messages": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "input_tokens_today": 0,
        "output_tokens_today": 0,
    }
    assert empty["last_message_at"] is None and empty["last_active"] is None
    logged_in = datetime.fromisoformat(empty["last_active_at"])  # their log-in at registration
    assert created - timedelta(minutes=1) < logged_in < last_message

    async def by_last_active(sort: str) -> list[str]:
        r = await client.get(f"{A}/users", params={"email": tag, "sort": sort}, headers=h)
        assert r.status_code == 200, r.text
        return [u["email"] for u in r.json()["items"]]

    emails = [p["email"] for p in (idle, busy, busier)]
    assert await by_last_active("-last_active") == emails[::-1]
    assert await by_last_active("last_active") == emails
    # A refresh counts as activity; a user whose logins are all revoked, and who never wrote,
    # has none: they come last in either order.
    r = await client.post("/api/v1/auth/login", data={"username": busy["email"], "password": PASSWORD})
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    reset = {"password": "N3w!password"}
    assert (await client.post(f"{A}/users/{idle_id}/password", json=reset, headers=h)).status_code == 204
    assert await by_last_active("-last_active_at") == [emails[1], emails[2], emails[0]]
    assert await by_last_active("last_active_at") == [emails[2], emails[1], emails[0]]
    gone = (await client.get(f"{A}/users/{idle_id}", headers=h)).json()
    assert gone["last_active_at"] is None

    r = await client.get(f"{A}/users/{busier_id}/sessions", params={"limit": 1}, headers=h)
    assert r.json()["total"] == 2 and len(r.json()["items"]) == 1


async def test_no_admin_route_returns_what_users_wrote_or_were_told(client, admin):
    h, user = auth(admin), await register(client)
    # No name given: the session is named from its first message, the secret.
    uid, sid = await user_id(client, user), await new_session(client, user)
    secret = f"my-secret-{uuid.uuid4().hex}"
    r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": secret}, headers=auth(user))
    assert secret in r.json()["reply"]  # the fake model echoes it: the reply holds it too
    own = await client.get(f"/api/v1/sessions/{sid}", headers=auth(user))
    assert secret in own.json()["name"]  # its owner sees it named
    pages = [
        await client.get(f"{A}/users/{uid}/sessions", headers=h),
        await client.get(f"{A}/users/{uid}", headers=h),
        await client.get(f"{A}/users", params={"email": user["email"]}, headers=h),
        await client.get(f"{A}/overview", headers=h),
        await client.get(f"{A}/audit", params={"target_id": uid}, headers=h),
    ]
    for page in pages:
        assert page.status_code == 200 and secret not in page.text, page.request.url
    fields = {"id", "memory_enabled", "created_at", "updated_at"}
    assert [set(s) for s in pages[0].json()["items"]] == [fields]
    # No admin route reads a session's messages: the only such route is the owner's.
    assert_error(await client.get(f"/api/v1/sessions/{sid}/messages", headers=h), 404)
    served = [p for p in (await client.get("/openapi.json")).json()["paths"] if p.startswith(A)]
    assert not [p for p in served if "message" in p or "memor" in p]


async def test_audit_records_who_did_what_to_whom(client, admin):
    h, target = auth(admin), await register(client)
    target_id = await user_id(client, target)
    calls = [
        ("POST", "disable", None),
        ("POST", "enable", None),
        ("POST", "password", {"password": "N3w!password"}),
        ("PATCH", "role", {"role": "admin"}),
    ]
    for method, action, body in calls:
        r = await client.request(method, f"{A}/users/{target_id}/{action}", json=body, headers=h)
        assert r.status_code in (200, 204), r.text
    assert (await client.delete(f"{A}/users/{target_id}", headers=h)).status_code == 204

    r = await client.get(f"{A}/audit", params={"target_id": target_id}, headers=h)
    log = r.json()
    assert log["total"] == 5
    assert [e["action"] for e in log["items"]] == [
        "user.deleted",
        "user.role_changed",
        "user.password_reset",
        "user.enabled",
        "user.disabled",
    ]
    for entry in log["items"]:
        assert entry["actor_id"] == admin["id"] and entry["actor_email"] == admin["email"]
        assert entry["target_id"] == target_id and entry["target_email"] == target["email"]
    assert log["items"][1]["detail"] == {"previous": "user", "role": "admin"}
    assert "N3w!password" not in r.text and "$2b$" not in r.text
    r = await client.get(f"{A}/audit", params={"actor_id": admin["id"], "action": "user.enabled"}, headers=h)
    assert [e["target_id"] for e in r.json()["items"]] == [target_id]
