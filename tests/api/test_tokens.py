"""Refresh tokens, rotation and reuse, log-out, password change, and attacks on tokens."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import PASSWORD, assert_error, auth, new_session, register, register_admin

NEW_PASSWORD = "An0ther!secret"


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers=bearer(token))


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture
async def account(client) -> dict[str, Any]:
    headers = await register(client)
    return {"email": headers["email"], **await log_in(client, headers["email"])}


async def test_login_returns_a_short_lived_access_token_and_a_refresh_token(client, account, settings):
    access, refresh_token = claims(account["access_token"]), claims(account["refresh_token"])
    assert access["type"] == "access" and refresh_token["type"] == "refresh"
    assert access["sid"] == refresh_token["sid"]  # one login
    assert access["exp"] - access["iat"] == pytest.approx(settings.access_token_minutes * 60, abs=2)
    assert refresh_token["exp"] - refresh_token["iat"] == pytest.approx(
        settings.refresh_token_days * 86400, abs=2
    )
    assert datetime.fromisoformat(account["refresh_expires_at"]) > datetime.fromisoformat(
        account["expires_at"]
    )
    assert (await me(client, account["access_token"])).status_code == 200


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_login(client, account):
    r = await refresh(client, account["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != account["refresh_token"]
    assert claims(second["access_token"])["sid"] == claims(account["access_token"])["sid"]
    assert (await me(client, second["access_token"])).status_code == 200
    other_login = await log_in(client, account["email"])  # another device

    # The first refresh token again: someone holds a copy. The login it belongs to is revoked.
    body = assert_error(await refresh(client, account["refresh_token"]), 401, "unauthorized")
    assert "already used" in body["detail"]
    assert_error(await refresh(client, second["refresh_token"]), 401, "unauthorized")
    assert_error(await me(client, second["access_token"]), 401, "unauthorized")
    assert_error(await me(client, account["access_token"]), 401, "unauthorized")
    # Another login of the same user is not part of that family.
    assert (await me(client, other_login["access_token"])).status_code == 200
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200


async def test_logout_revokes_this_login_only_and_everywhere_revokes_all(client, account):
    phone = await log_in(client, account["email"])
    r = await client.post("/api/v1/auth/logout", headers=bearer(account["access_token"]))
    assert r.status_code == 204 and r.content == b""
    assert_error(await me(client, account["access_token"]), 401, "unauthorized")
    assert_error(await refresh(client, account["refresh_token"]), 401, "unauthorized")
    assert (await me(client, phone["access_token"])).status_code == 200

    laptop = await log_in(client, account["email"])
    r = await client.post(
        "/api/v1/auth/logout", params={"everywhere": "true"}, headers=bearer(phone["access_token"])
    )
    assert r.status_code == 204
    for login in (phone, laptop):
        assert_error(await me(client, login["access_token"]), 401, "unauthorized")
        assert_error(await refresh(client, login["refresh_token"]), 401, "unauthorized")
    assert_error(await client.post("/api/v1/auth/logout"), 401, "unauthorized")


async def test_a_logged_out_token_cannot_chat_or_stream(client, account):
    headers = bearer(account["access_token"])
    sid = await new_session(client, headers)
    await client.post("/api/v1/auth/logout", headers=headers)
    assert_error(
        await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=headers),
        401,
        "unauthorized",
    )
    r = await client.post(f"/api/v1/sessions/{sid}/chat/stream", json={"message": "hi"}, headers=headers)
    assert_error(r, 401, "unauthorized")


async def test_password_change_revokes_every_login_and_returns_a_new_one(client, account):
    other = await log_in(client, account["email"])
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(account["access_token"]),
    )
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert (await me(client, fresh["access_token"])).status_code == 200
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200
    for login in (account, other):
        assert_error(await me(client, login["access_token"]), 401, "unauthorized")
        assert_error(await refresh(client, login["refresh_token"]), 401, "unauthorized")
    r = await client.post("/api/v1/auth/login", data={"username": account["email"], "password": PASSWORD})
    assert_error(r, 401, "unauthorized")
    await log_in(client, account["email"], NEW_PASSWORD)


async def test_password_change_checks_the_current_password_and_the_policy(client, account):
    headers = bearer(account["access_token"])
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "wrong", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert_error(r, 403, "forbidden")
    r = await client.post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=headers
    )
    assert_error(r, 422, "validation_error")
    assert (await me(client, account["access_token"])).status_code == 200  # nothing changed


async def test_admin_reset_and_disable_revoke_refresh_tokens_too(app, client):
    admin = await register_admin(app, client)
    for action, body in [("password", {"password": NEW_PASSWORD}), ("disable", None)]:
        headers = await register(client)
        login = await log_in(client, headers["email"])
        uid = (await me(client, login["access_token"])).json()["id"]
        r = await client.post(f"/api/v1/admin/users/{uid}/{action}", json=body, headers=auth(admin))
        assert r.status_code in (200, 204), r.text
        assert_error(await refresh(client, login["refresh_token"]), 401, "unauthorized")
        assert_error(await me(client, login["access_token"]), 401, "unauthorized")


# --- attacks on tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(token: str, **changes: Any) -> str:
    """The token's payload changed, its header and signature kept."""
    header, payload, signature = token.split(".")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    values.update(changes)
    return f"{header}.{_b64(json.dumps(values).encode())}.{signature}"


def _unsigned(values: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(values).encode())}."


def _tampered(token: str) -> str:
    header, body, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{header}.{body}.{signature[:5]}{flipped}{signature[6:]}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_and_misused_tokens_are_refused_everywhere(app, client, account, settings):
    access, refresh_token = account["access_token"], account["refresh_token"]
    payload = claims(access)
    secret = settings.jwt_secret_key.get_secret_value()
    other = await register(client)
    other_id = (await client.get("/api/v1/auth/me", headers=auth(other))).json()["id"]
    attacks = {
        "tampered signature": _tampered(access),
        "payload changed to another user": _forge(access, sub=other_id),
        "alg none": _unsigned(payload),
        "alg None": _unsigned(payload, alg="None"),
        "another HMAC algorithm": jwt.encode(payload, secret, algorithm="HS512"),
        "expired": jwt.encode(
            {**payload, "exp": int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())}, secret
        ),
        "refresh token used as access": refresh_token,
        "not yet valid": jwt.encode(
            {**payload, "iat": (datetime.now(UTC) + timedelta(hours=1)).timestamp()}, secret
        ),
        "empty": "",
        "three dots": "...",
    }
    sid = await new_session(client, bearer(access))
    for name, token in attacks.items():
        headers = bearer(token)
        for method, path, json_body in [
            ("GET", "/api/v1/auth/me", None),
            ("GET", "/api/v1/sessions", None),
            ("POST", f"/api/v1/sessions/{sid}/chat", {"message": "hi"}),
            ("POST", f"/api/v1/sessions/{sid}/chat/stream", {"message": "hi"}),
            ("GET", "/api/v1/memories", None),
            ("GET", "/api/v1/admin/users", None),
        ]:
            r = await client.request(method, path, json=json_body, headers=headers)
            assert r.status_code == 401, (name, path, r.status_code, r.text)
            assert r.json()["error"] == "unauthorized", name
    # An access token cannot be used to refresh either.
    assert_error(await refresh(client, access), 401, "unauthorized")
    assert (await me(client, access)).status_code == 200  # the real token still works


async def test_a_refresh_token_of_a_deleted_user_or_unknown_login_is_refused(client, settings):
    headers = await register(client)
    login = await log_in(client, headers["email"])
    payload = claims(login["refresh_token"])
    secret = settings.jwt_secret_key.get_secret_value()
    assert_error(await refresh(client, jwt.encode({**payload, "sid": str(uuid.uuid4())}, secret)), 401)
    assert (await client.delete("/api/v1/auth/me", headers=bearer(login["access_token"]))).status_code == 204
    assert_error(await refresh(client, login["refresh_token"]), 401, "unauthorized")


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "x" * 5000}]
)
async def test_refresh_with_bad_input_is_a_clear_4xx(client, body):
    r = await client.post("/api/v1/auth/refresh", json=body)
    assert_error(r, 422, "validation_error")


async def test_logout_with_a_revoked_token_is_refused(client, account):
    headers = bearer(account["access_token"])
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert_error(await client.post("/api/v1/auth/logout", headers=headers), 401, "unauthorized")
    r = await client.post("/api/v1/auth/logout", params={"everywhere": "true"}, headers=headers)
    assert_error(r, 401, "unauthorized")


async def test_a_token_revoked_by_a_password_change_cannot_log_out_the_new_login(client, account):
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(account["access_token"]),
    )
    assert r.status_code == 200, r.text
    fresh = r.json()
    stale = bearer(account["access_token"])
    r = await client.post("/api/v1/auth/logout", params={"everywhere": "true"}, headers=stale)
    assert_error(r, 401, "unauthorized")
    assert_error(await client.post("/api/v1/auth/logout", headers=stale), 401, "unauthorized")
    # The login the password change made is untouched.
    assert (await me(client, fresh["access_token"])).status_code == 200
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200
