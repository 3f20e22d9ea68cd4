"""Logs: each line of a request carries its ids; passwords and message contents never reach INFO."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.observability.logging import configure_logging
from tests.conftest import asgi_client, auth, make_settings, new_session, running_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_logging(settings) -> Iterator[None]:
    yield
    configure_logging(settings)  # the session's own configuration, on the real stderr again


async def test_info_logs_carry_the_request_and_never_a_password_or_a_message(
    pg_url, fake_llm, capsys, restore_logging
):
    password = f"Pw{uuid.uuid4().hex[:10]}!9"
    words = f"private{uuid.uuid4().hex[:10]}"
    # APP_ENV=test renders console lines; only the level is raised to what production logs.
    settings = make_settings(pg_url, fake_llm, log_level="INFO")
    async with running_app(settings) as app, asgi_client(app) as client:
        email = f"log-{uuid.uuid4().hex[:8]}@example.com"
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/auth/login", data={"username": email, "password": password})
        user = {"Authorization": f"Bearer {r.json()['access_token']}"}
        user_id = (await client.get("/api/v1/auth/me", headers=user)).json()["id"]
        sid = await new_session(client, user)
        message = f"{words} [calc:2+3] [remember:{words}]"
        r = await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user))
        assert r.status_code == 200, r.text
        request_id = r.headers["x-request-id"]
        await app.state.runtime.memory_jobs.idle()
        bad = await client.post("/api/v1/auth/login", data={"username": email, "password": password + "x"})
        assert bad.status_code == 401
    out = capsys.readouterr().err
    lines = out.splitlines()
    assert any("[info" in line for line in lines), "INFO lines were written"
    assert password not in out and words not in out
    assert r.json()["reply"] not in out
    (turn,) = [line for line in lines if "chat.turn_completed" in line]
    assert f"request_id={request_id}" in turn
    assert f"user_id={user_id}" in turn and f"session_id={sid}" in turn
    (access,) = [line for line in lines if "http.request" in line and f"request_id={request_id}" in line]
    assert "route=/api/v1/sessions/{session_id}/chat" in access and f"user_id={user_id}" in access
    assert "status=200" in access
    # Every line written while a request was served names it.
    for line in lines:
        if "http.request" in line or "chat." in line:
            assert "request_id=" in line, line


def test_production_lines_are_json_with_the_context_bound_to_the_request():
    code = (
        "import logging, structlog\n"
        "from app.config import load_settings\n"
        "from app.observability.logging import configure_logging\n"
        "configure_logging(load_settings())\n"
        "structlog.contextvars.bind_contextvars(request_id='r1', user_id='u1')\n"
        "structlog.get_logger('app.x').info('chat.turn_completed', tool_calls=1)\n"
        "logging.getLogger('some.library').warning('from the standard library %s', 'too')\n"
        "structlog.get_logger('app.x').debug('not at INFO')\n"
    )
    env = {**os.environ, "APP_ENV": "staging", "JWT_SECRET_KEY": "s" * 48, "PYTHONPATH": str(ROOT)}
    env.pop("LOG_LEVEL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["event"] for r in records] == ["chat.turn_completed", "from the standard library too"]
    for record in records:
        assert (record["request_id"], record["user_id"]) == ("r1", "u1")
        assert record["timestamp"] and record["level"] in ("info", "warning")
    assert records[1]["logger"] == "some.library"
