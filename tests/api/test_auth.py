"""Sign-up, log-in and bearer tokens through the API."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import PASSWORD, assert_error, auth


def unique_email(prefix: str = "auth") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def error_messages(body: dict[str, Any]) -> str:
    return " | ".join(str(e["msg"]) for e in body["detail"])


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/register", json={"email": email, "password": password})


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", data={"username": username, "password": password})


def craft(settings, key: str | None = None, algorithm: str = "HS256", **claims: Any) -> str:
    values: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "type": "access",
        "iat": datetime.now(UTC).timestamp(),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    values.update(claims)
    values = {name: value for name, value in values.items() if value is not None}
    return jwt.encode(values, key or settings.jwt_secret_key.get_secret_value(), algorithm=algorithm)


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


# --- register


async def test_register_returns_user_without_password_and_lowercases_email(client):
    email = unique_email("MiXeD").replace("example", "Example")
    r = await sign_up(client, email)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == email.lower()
    assert body["is_active"] is True
    uuid.UUID(body["id"])
    assert "password" not in r.text.lower()
    assert "hash" not in r.text.lower()
    assert PASSWORD not in r.text
    assert "$2b$" not in r.text


async def test_register_duplicate_email_is_conflict_whatever_the_case(client):
    email = unique_email()
    assert (await sign_up(client, email)).status_code == 201
    assert_error(await sign_up(client, email), 409, "conflict")
    assert_error(await sign_up(client, email.upper()), 409, "conflict")


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("str0ng!pass", "an uppercase letter"),
        ("STR0NG!PASS", "a lowercase letter"),
        ("Strong!pass", "a digit"),
        ("Str0ngpass1", "a special character"),
    ],
)
async def test_register_password_missing_a_class_is_rejected_with_reason(client, password, missing):
    body = assert_error(await sign_up(client, unique_email(), password), 422, "validation_error")
    assert f"password must contain {missing}" in error_messages(body)
    assert password not in str(body)  # the rejected input is not echoed back


@pytest.mark.parametrize("password", ["Aa1!abc", "Aa1!" + "x" * 125])
async def test_register_password_length_limits(client, password):
    body = assert_error(await sign_up(client, unique_email(), password), 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "password"]


async def test_register_password_of_exactly_128_chars_is_accepted(client):
    email, password = unique_email(), "Aa1!" + "x" * 124
    assert (await sign_up(client, email, password)).status_code == 201
    assert (await log_in(client, email, password)).status_code == 200


async def test_long_unicode_password_counts_every_character(client):
    head = "Pä$$wörd-🔑-Ωμέγα-ß!1"
    head += "x" * (72 - len(head.encode()))
    password = head + ("ü€😀#" * 25)[: 99 - len(head)] + "Z"
    assert len(password) == 100
    assert len(head.encode()) == 72
    email = unique_email()
    assert (await sign_up(client, email, password)).status_code == 201
    assert (await log_in(client, email, password)).status_code == 200
    # Were bcrypt's 72-byte truncation to apply, the prefix alone would log in.
    assert_error(await log_in(client, email, head), 401, "unauthorized")
    assert_error(await log_in(client, email, password[:-1]), 401, "unauthorized")


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
async def test_register_invalid_email_is_rejected(client, email):
    body = assert_error(await sign_up(client, email), 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "nul\x00user@example.com", "password": PASSWORD},
        {"email": "nul-pass@example.com", "password": "Str0ng!\x00pass"},
    ],
)
async def test_register_nul_bytes_are_rejected(client, payload):
    assert_error(await client.post("/api/v1/auth/register", json=payload), 422, "validation_error")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "missing-pass@example.com"},
        {"password": PASSWORD},
        {"email": {"email": "nested@example.com"}, "password": PASSWORD},
        {"email": "nested2@example.com", "password": {"value": PASSWORD}},
        [{"email": "list@example.com", "password": PASSWORD}],
        {"user": {"email": "wrapped@example.com", "password": PASSWORD}},
    ],
)
async def test_register_malformed_payloads_are_rejected(client, payload):
    assert_error(await client.post("/api/v1/auth/register", json=payload), 422, "validation_error")


async def test_register_non_json_body_is_rejected(client):
    r = await client.post(
        "/api/v1/auth/register", content=b"email=x@example.com", headers={"Content-Type": "application/json"}
    )
    assert_error(r, 422, "validation_error")


# --- login


async def test_login_returns_bearer_token_expiring_in_the_future(client):
    email = unique_email()
    await sign_up(client, email)
    r = await log_in(client, email.upper(), PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at > datetime.now(UTC)
    r = await me(client, body["access_token"])
    assert r.status_code == 200
    assert r.json()["email"] == email


async def test_wrong_password_and_unknown_email_look_the_same(client):
    email = unique_email()
    await sign_up(client, email)
    wrong = await log_in(client, email, PASSWORD + "x")
    unknown = await log_in(client, unique_email("nobody"), PASSWORD)
    assert_error(wrong, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize("username", ["not-an-email", "x" * 400, "nul\x00@example.com", "a@b@example.com"])
async def test_login_with_malformed_email_is_unauthorized_not_a_crash(client, username):
    assert_error(await log_in(client, username, PASSWORD), 401, "unauthorized")


@pytest.mark.parametrize(
    "data",
    [{}, {"username": "a@example.com"}, {"password": PASSWORD}, {"username": "", "password": PASSWORD}],
)
async def test_login_missing_form_fields_is_validation_error(client, data):
    assert_error(await client.post("/api/v1/auth/login", data=data), 422, "validation_error")


# --- me


async def test_me_returns_the_current_user(client, user):
    r = await client.get("/api/v1/auth/me", headers=auth(user))
    assert r.status_code == 200, r.text
    assert r.json()["email"] == user["email"]
    assert "hashed_password" not in r.json()


async def test_me_without_token_is_unauthorized(client):
    r = await client.get("/api/v1/auth/me")
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_me_with_garbage_token_is_unauthorized(client):
    for token in ["garbage", "a.b.c", "Bearer"]:
        assert_error(await me(client, token), 401, "unauthorized")


async def test_me_rejects_tokens_it_did_not_issue_or_no_longer_honours(client, user, settings):
    real_id = (await client.get("/api/v1/auth/me", headers=auth(user))).json()["id"]
    real = jwt.decode(user["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    login = {"sub": real_id, "sid": real["sid"]}
    past = datetime.now(UTC) - timedelta(minutes=1)
    tokens = {
        "other key": craft(settings, key="another-secret-key-that-is-long-enough-1234", **login),
        "expired": craft(settings, exp=past, **login),
        "refresh type": craft(settings, type="refresh", **login),
        "unknown login": craft(settings, sub=real_id),
        "no login": craft(settings, sub=real_id, sid=None),
        "login not a uuid": craft(settings, sub=real_id, sid="x"),
        "no type": jwt.encode(
            {"sub": real_id, "exp": datetime.now(UTC) + timedelta(minutes=5)},
            settings.jwt_secret_key.get_secret_value(),
        ),
        "alg none": jwt.encode(
            {"sub": real_id, "type": "access", "exp": datetime.now(UTC) + timedelta(minutes=5)},
            None,
            algorithm="none",
        ),
        "unknown user": craft(settings),
        "sub not a uuid": craft(settings, sub="admin"),
    }
    for name, token in tokens.items():
        body = assert_error(await me(client, token), 401, "unauthorized")
        assert "Traceback" not in str(body), name
    assert (await me(client, tokens["expired"])).json()["detail"] == "Token has expired"
    # The same claims signed with the real key do work, so the rejections above are about the token.
    assert (await me(client, craft(settings, **login))).status_code == 200
