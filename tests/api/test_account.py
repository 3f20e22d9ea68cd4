"""Deleting an account leaves no row behind: in our tables, LangGraph's or mem0's."""

from sqlalchemy import text

from tests.conftest import auth, new_session, register

_COUNTS = """
SELECT
  (SELECT count(*) FROM "user" WHERE id = :u) AS users,
  (SELECT count(*) FROM session WHERE user_id = :u) AS sessions,
  (SELECT count(*) FROM thread WHERE id = ANY(:t)) AS threads,
  (SELECT count(*) FROM message WHERE thread_id = ANY(:t)) AS messages,
  (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(:ts)) AS checkpoints,
  (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ANY(:ts)) AS blobs,
  (SELECT count(*) FROM checkpoint_writes WHERE thread_id = ANY(:ts)) AS writes,
  (SELECT count(*) FROM memories WHERE user_id = :u OR payload::text LIKE '%' || :us || '%') AS memories,
  (SELECT count(*) FROM memory_history WHERE user_id = :u) AS memory_history,
  (SELECT count(*) FROM memory_message WHERE user_id = :u) AS memory_messages
"""


async def _counts(app, user_id, thread_ids):
    async with app.state.runtime.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(_COUNTS),
                {"u": user_id, "us": str(user_id), "t": thread_ids, "ts": [str(t) for t in thread_ids]},
            )
        ).one()
    return dict(row._mapping)


async def test_delete_me_removes_everything(app, client):
    user = await register(client)
    other = await register(client)
    other_sid = await new_session(client, other)
    await client.post(f"/api/v1/sessions/{other_sid}/chat", json={"message": "keep me"}, headers=auth(other))
    me = (await client.get("/api/v1/auth/me", headers=auth(user))).json()
    for name in ("a", "b"):
        sid = await new_session(client, user, name)
        for message in ("hello [remember:I have a cat called Miso]", "[calc:1+2]"):
            r = await client.post(
                f"/api/v1/sessions/{sid}/chat", json={"message": message}, headers=auth(user)
            )
            assert r.status_code == 200
    async with app.state.runtime.db.engine.connect() as conn:
        thread_ids = list(
            (
                await conn.execute(
                    text(
                        "SELECT t.id FROM thread t JOIN session s ON s.id = t.session_id WHERE s.user_id = :u"
                    ),
                    {"u": me["id"]},
                )
            ).scalars()
        )
    r = await client.post("/api/v1/memories", json={"text": "Prefers tea"}, headers=auth(user))
    assert r.status_code == 201
    await app.state.runtime.memory_jobs.idle()
    before = await _counts(app, me["id"], thread_ids)
    assert before["messages"] == 8 and before["checkpoints"] > 0 and before["blobs"] > 0
    assert before["memories"] >= 2 and before["memory_history"] >= 2 and before["memory_messages"] > 0

    assert (await client.delete("/api/v1/auth/me", headers=auth(user))).status_code == 204
    assert set((await _counts(app, me["id"], thread_ids)).values()) == {0}
    assert (await client.get("/api/v1/auth/me", headers=auth(user))).status_code == 401
    # Another user's data is untouched.
    r = await client.get(f"/api/v1/sessions/{other_sid}/messages", headers=auth(other))
    assert r.json()["total"] == 2
