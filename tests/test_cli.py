"""`python -m app.cli create-admin`, run as a subprocess the way an operator would, without a terminal."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text

from tests.conftest import PASSWORD, auth, register

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_admin(pg_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_PASSWORD"}
    env.update(APP_ENV="test", DATABASE_URL=pg_url, BCRYPT_ROUNDS="4", PYTHONPATH=str(PROJECT_ROOT))
    if password is not None:
        env["ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "create-admin", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal: the password must come from the environment
        capture_output=True,
        text=True,
        timeout=60,
    )


def email() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}@example.com"


async def test_creates_an_admin_who_can_log_in(app, client, pg_url):
    address = email()
    done = create_admin(pg_url, "--email", address.upper(), password=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Created admin {address}."
    assert PASSWORD not in done.stdout + done.stderr
    r = await client.post("/api/v1/auth/login", data={"username": address, "password": PASSWORD})
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = (await client.get("/api/v1/auth/me", headers=token)).json()
    assert me["role"] == "admin" and me["is_active"] is True
    audit = (await client.get("/api/v1/admin/audit", params={"target_id": me["id"]}, headers=token)).json()
    assert [(e["action"], e["actor_id"], e["detail"]["via"]) for e in audit["items"]] == [
        ("user.created", None, "cli")
    ]


async def test_promotes_and_reenables_an_existing_user_without_asking_for_a_password(app, client, pg_url):
    user = await register(client)
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("""UPDATE "user" SET is_active = false WHERE email = :e"""), {"e": user["email"]}
        )
    done = create_admin(pg_url, "--email", user["email"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{user['email']} is now an active admin."
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    assert me["role"] == "admin" and me["is_active"] is True
    again = create_admin(pg_url, "--email", user["email"])
    assert again.stdout.strip() == f"{user['email']} is already an active admin."


async def test_refuses_weak_missing_or_command_line_passwords(client, pg_url):
    address = email()
    weak = create_admin(pg_url, "--email", address, password="password")
    assert weak.returncode == 1 and "Password refused" in weak.stderr
    missing = create_admin(pg_url, "--email", address)
    assert missing.returncode == 1 and "ADMIN_PASSWORD" in missing.stderr
    argv = create_admin(pg_url, "--email", address, "--password", PASSWORD)
    assert argv.returncode == 2 and "unrecognized arguments" in argv.stderr
    bad_email = create_admin(pg_url, "--email", "not-an-email", password=PASSWORD)
    assert bad_email.returncode == 2 and "--email" in bad_email.stderr
    # None of them created the account.
    r = await client.post("/api/v1/auth/login", data={"username": address, "password": PASSWORD})
    assert r.status_code == 401
