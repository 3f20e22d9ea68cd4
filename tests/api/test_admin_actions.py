"""Admin actions and their effect on the user: disable, reset, roles, the last admin, delete."""

import asyncio

from sqlalchemy import text

from app.services.admin import LAST_ADMIN
from tests.api.test_account import _counts
from tests.conftest import PASSWORD, assert_error, auth, new_session, register, register_admin

A = "/api/v1/admin"
NEW_PASSWORD = "N3w!password"


async def user_id(client, headers) -> str:
    return str((await client.get("/api/v1/auth/me", headers=auth(headers))).json()["id"])


async def log_in(client, email: str, password: str):
    return await client.post("/api/v1/auth/login", data={"username": email, "password": password})


async def chat(client, headers, sid: str):
    return await client.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"}, headers=auth(headers))


async def sole_admin(app, client) -> dict[str, str]:
    """A new admin that is the only active one (earlier tests leave admins behind)."""
    admin = await register_admin(app, client)
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("""UPDATE "user" SET role = 'user' WHERE role = 'admin' AND id <> :me"""),
            {"me": admin["id"]},
        )
    return admin


async def audit_total(client, admin, target_id: str) -> int:
    r = await client.get(f"{A}/audit", params={"target_id": target_id}, headers=auth(admin))
    return int(r.json()["total"])


async def test_disable_stops_existing_tokens_at_once_and_enable_lets_the_user_log_in_again(app, client):
    admin, user = await register_admin(app, client), await register(client)
    uid, sid = await user_id(client, user), await new_session(client, user)
    r = await client.post(f"{A}/users/{uid}/disable", headers=auth(admin))
    assert r.status_code == 200 and r.json()["is_active"] is False

    assert_error(await client.get("/api/v1/auth/me", headers=auth(user)), 401, "unauthorized")
    assert_error(await client.get("/api/v1/sessions", headers=auth(user)), 401, "unauthorized")
    assert_error(await chat(client, user, sid), 401, "unauthorized")
    stream = await client.post(
        f"/api/v1/sessions/{sid}/chat/stream", json={"message": "hi"}, headers=auth(user)
    )
    assert_error(stream, 401, "unauthorized")
    assert_error(await log_in(client, user["email"], PASSWORD), 401)

    r = await client.post(f"{A}/users/{uid}/enable", headers=auth(admin))
    assert r.status_code == 200 and r.json()["is_active"] is True
    # Disabling revoked the logins: tokens taken before it (perhaps by whoever got the account
    # disabled) stay dead; the user logs in afresh.
    assert_error(await client.get("/api/v1/auth/me", headers=auth(user)), 401, "unauthorized")
    r = await log_in(client, user["email"], PASSWORD)
    assert r.status_code == 200
    again = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=again)).status_code == 200
    assert (await chat(client, again, sid)).status_code == 200


async def test_password_reset_revokes_old_tokens_and_the_old_password(app, client):
    admin, user = await register_admin(app, client), await register(client)
    uid = await user_id(client, user)
    r = await client.post(f"{A}/users/{uid}/password", json={"password": NEW_PASSWORD}, headers=auth(admin))
    assert r.status_code == 204 and r.content == b""

    body = assert_error(await client.get("/api/v1/auth/me", headers=auth(user)), 401, "unauthorized")
    assert body["detail"] == "Token has been revoked"
    assert_error(await client.get("/api/v1/sessions", headers=auth(user)), 401)
    assert_error(await log_in(client, user["email"], PASSWORD), 401)
    # Within the same second as the reset: the new token's iat is finer than seconds.
    r = await log_in(client, user["email"], NEW_PASSWORD)
    assert r.status_code == 200
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 200
    # The admin's own token is untouched.
    assert (await client.get(f"{A}/users/{uid}", headers=auth(admin))).status_code == 200


async def test_password_reset_revokes_old_tokens_for_chat_too(app, client):
    admin, user = await register_admin(app, client), await register(client)
    uid, sid = await user_id(client, user), await new_session(client, user)
    await client.post(f"{A}/users/{uid}/password", json={"password": NEW_PASSWORD}, headers=auth(admin))
    assert_error(await chat(client, user, sid), 401)
    r = await client.post(f"/api/v1/sessions/{sid}/chat/stream", json={"message": "hi"}, headers=auth(user))
    assert_error(r, 401)
    r = await client.post("/api/v1/auth/login", data={"username": user["email"], "password": NEW_PASSWORD})
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await chat(client, fresh, sid)).status_code == 200


async def test_promote_and_demote_take_effect_on_the_next_request(app, client):
    admin, other = await register_admin(app, client), await register(client)
    oid = await user_id(client, other)
    r = await client.patch(f"{A}/users/{oid}/role", json={"role": "admin"}, headers=auth(admin))
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert (await client.get(f"{A}/users", headers=auth(other))).status_code == 200
    r = await client.patch(f"{A}/users/{oid}/role", json={"role": "user"}, headers=auth(admin))
    assert r.json()["role"] == "user"
    assert_error(await client.get(f"{A}/users", headers=auth(other)), 403, "forbidden")


async def test_the_last_active_admin_cannot_be_demoted_disabled_or_deleted(app, client):
    admin = await sole_admin(app, client)
    me, h = admin["id"], auth(admin)
    refused = [
        await client.patch(f"{A}/users/{me}/role", json={"role": "user"}, headers=h),
        await client.post(f"{A}/users/{me}/disable", headers=h),
        await client.delete(f"{A}/users/{me}", headers=h),
    ]
    for r in refused:
        assert assert_error(r, 409, "conflict")["detail"] == LAST_ADMIN
    assert (await client.get("/api/v1/auth/me", headers=h)).json()["role"] == "admin"
    assert await audit_total(client, admin, me) == 0  # refused actions leave no record

    # With a second admin, stepping down is fine; then the other one is the last.
    other = await register(client)
    oid = await user_id(client, other)
    await client.patch(f"{A}/users/{oid}/role", json={"role": "admin"}, headers=h)
    assert (await client.patch(f"{A}/users/{me}/role", json={"role": "user"}, headers=h)).status_code == 200
    assert_error(await client.post(f"{A}/users/{oid}/disable", headers=auth(other)), 409, "conflict")
    # A disabled admin does not count: enabling or promoting is never refused.
    assert (await client.post(f"{A}/users/{oid}/enable", headers=auth(other))).status_code == 200


async def test_concurrent_changes_never_remove_the_last_admin(app, client):
    for _ in range(3):
        first = await sole_admin(app, client)
        second = await register_admin(app, client)
        # Each demotes the other at the same moment: exactly one may win.
        results = await asyncio.gather(
            client.patch(f"{A}/users/{second['id']}/role", json={"role": "user"}, headers=auth(first)),
            client.patch(f"{A}/users/{first['id']}/role", json={"role": "user"}, headers=auth(second)),
        )
        # The loser sees 409, or 403 when its own demotion landed before its request was authorised.
        assert sorted(r.status_code for r in results) in ([200, 403], [200, 409]), [r.text for r in results]
        async with app.state.runtime.db.engine.connect() as conn:
            admins = await conn.execute(
                text("""SELECT count(*) FROM "user" WHERE role = 'admin' AND is_active""")
            )
            assert admins.scalar_one() == 1


async def test_delete_removes_everything_of_theirs_and_keeps_the_record(app, client):
    admin, user, other = await register_admin(app, client), await register(client), await register(client)
    uid = await user_id(client, user)
    other_sid = await new_session(client, other)
    assert (await chat(client, other, other_sid)).status_code == 200
    thread_ids = []
    for name in ("a", "b"):
        sid = await new_session(client, user, name)
        for message in ("hello [remember:I have a dog called Rex]", "[calc:1+2]"):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user)
            )
            assert r.status_code == 200
    assert (
        await client.post("/api/v1/memories", json={"text": "Likes tea"}, headers=auth(user))
    ).status_code == 201
    async with app.state.runtime.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT t.id FROM thread t JOIN session s ON s.id = t.session_id WHERE s.user_id = :u"),
            {"u": uid},
        )
        thread_ids = list(rows.scalars())
    await app.state.runtime.memory_jobs.idle()
    before = await _counts(app, uid, thread_ids)
    assert before["messages"] == 8 and before["checkpoints"] > 0 and before["memories"] >= 1

    assert (await client.delete(f"{A}/users/{uid}", headers=auth(admin))).status_code == 204
    assert set((await _counts(app, uid, thread_ids)).values()) == {0}
    assert_error(await client.get("/api/v1/auth/me", headers=auth(user)), 401)
    assert_error(await client.get(f"{A}/users/{uid}", headers=auth(admin)), 404)
    r = await client.get(f"{A}/audit", params={"target_id": uid}, headers=auth(admin))
    assert [(e["action"], e["target_email"]) for e in r.json()["items"]] == [("user.deleted", user["email"])]
    r = await client.get(f"/api/v1/sessions/{other_sid}/messages", headers=auth(other))
    assert r.json()["total"] == 2


async def test_delete_is_refused_while_a_session_answers(app, client):
    admin, user = await register_admin(app, client), await register(client)
    uid, sid = await user_id(client, user), await new_session(client, user)
    lease = "UPDATE thread SET run_id = {}, lease_expires_at = {} WHERE session_id = :s"
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(text(lease.format("gen_random_uuid()", "now() + interval '1 minute'")), {"s": sid})
    assert_error(await client.delete(f"{A}/users/{uid}", headers=auth(admin)), 409, "thread_busy")
    assert (await client.get("/api/v1/auth/me", headers=auth(user))).status_code == 200
    assert await audit_total(client, admin, uid) == 0
    async with app.state.runtime.db.engine.begin() as conn:
        await conn.execute(text(lease.format("NULL", "NULL")), {"s": sid})
    assert (await client.delete(f"{A}/users/{uid}", headers=auth(admin))).status_code == 204
