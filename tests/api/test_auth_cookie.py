"""The web app's refresh token: an HttpOnly, SameSite=Strict cookie on the auth routes, spent only
with the CSRF header. Bearer clients are unaffected (tests/api/test_tokens.py)."""

import httpx
from fastapi import Response

from app.api.auth_cookie import COOKIE, CSRF_HEADER, PATH, set_refresh_cookie
from app.config import Environment
from app.services.tokens import TokenPair
from tests.api.test_tokens import NEW_PASSWORD, bearer
from tests.conftest import PASSWORD, assert_error, register

CSRF = {CSRF_HEADER: "1"}


async def cookie_login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    r = await client.post(
        "/api/v1/auth/login?cookie=true", data={"username": email, "password": PASSWORD}, headers=CSRF
    )
    assert r.status_code == 200, r.text
    return r


def set_cookie(r: httpx.Response) -> str:
    (header,) = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    return header


async def test_cookie_login_keeps_the_refresh_token_out_of_the_page(client: httpx.AsyncClient) -> None:
    email = (await register(client))["email"]
    r = await cookie_login(client, email)
    body = r.json()
    assert body["refresh_token"] is None and body["access_token"]
    header = set_cookie(r).lower()
    assert header.startswith(f"{COOKIE}=")
    for attribute in ("httponly", "samesite=strict", f"path={PATH}"):
        assert attribute in header, header
    assert "secure" not in header  # the test environment is plain HTTP
    assert client.cookies.get(COOKIE)


async def test_refresh_from_the_cookie_needs_the_csrf_header_and_rotates(client: httpx.AsyncClient) -> None:
    email = (await register(client))["email"]
    await cookie_login(client, email)
    first = client.cookies.get(COOKIE)
    assert_error(await client.post("/api/v1/auth/refresh"), 403, "csrf_failed")
    r = await client.post("/api/v1/auth/refresh", headers=CSRF)
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] is None
    rotated = client.cookies.get(COOKIE)
    assert rotated and rotated != first
    assert (await client.get("/api/v1/auth/me", headers=bearer(r.json()["access_token"]))).status_code == 200
    # The spent cookie, replayed, revokes the login: the rotated one stops working too.
    client.cookies.set(COOKIE, first, path=PATH)
    assert_error(await client.post("/api/v1/auth/refresh", headers=CSRF), 401)
    client.cookies.set(COOKIE, rotated, path=PATH)
    assert_error(await client.post("/api/v1/auth/refresh", headers=CSRF), 401)


async def test_setting_the_cookie_needs_the_csrf_header(client: httpx.AsyncClient) -> None:
    """Another site's form could otherwise log a visitor in to the attacker's account."""
    email = (await register(client))["email"]
    client.cookies.clear()
    r = await client.post("/api/v1/auth/login?cookie=true", data={"username": email, "password": PASSWORD})
    assert_error(r, 403, "csrf_failed")
    assert client.cookies.get(COOKIE) is None
    # Bearer clients, without the cookie, need no header.
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["refresh_token"]


async def test_refresh_without_body_or_cookie_is_401(client: httpx.AsyncClient) -> None:
    client.cookies.clear()
    assert_error(await client.post("/api/v1/auth/refresh", headers=CSRF), 401, "unauthorized")


async def test_logout_clears_the_cookie(client: httpx.AsyncClient) -> None:
    email = (await register(client))["email"]
    r = await cookie_login(client, email)
    out = await client.post("/api/v1/auth/logout", headers=bearer(r.json()["access_token"]))
    assert out.status_code == 204
    assert "max-age=0" in set_cookie(out).lower()
    assert client.cookies.get(COOKIE) is None
    assert_error(await client.post("/api/v1/auth/refresh", headers=CSRF), 401)


async def test_password_change_in_cookie_mode_sets_a_new_cookie(client: httpx.AsyncClient) -> None:
    email = (await register(client))["email"]
    r = await cookie_login(client, email)
    old = client.cookies.get(COOKIE)
    changed = await client.post(
        "/api/v1/auth/password?cookie=true",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={**bearer(r.json()["access_token"]), **CSRF},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["refresh_token"] is None
    assert client.cookies.get(COOKIE) not in (None, old)
    assert (await client.post("/api/v1/auth/refresh", headers=CSRF)).status_code == 200


def test_the_cookie_is_secure_when_deployed(settings: object) -> None:
    from datetime import UTC, datetime, timedelta

    from app.config import Settings

    base = settings.model_dump()  # type: ignore[attr-defined]
    pair = TokenPair("a", datetime.now(UTC), "r", datetime.now(UTC) + timedelta(days=1))
    for env, override, secure in [
        (Environment.production, None, True),
        (Environment.production, False, False),
        (Environment.development, None, False),
        (Environment.development, True, True),
    ]:
        values = {**base, "app_env": env, "auth_cookie_secure": override, "jwt_secret_key": "x" * 40}
        response = Response()
        set_refresh_cookie(response, pair, Settings(_env_file=None, **values))  # type: ignore[call-arg]
        assert ("secure" in response.headers["set-cookie"].lower()) is secure, (env, override)
