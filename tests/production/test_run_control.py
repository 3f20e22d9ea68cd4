"""Runs on the production path: separate processes on a managed PostgreSQL with a role that is not a
superuser. Double texting and approvals across two API processes; a queued run that the worker
process (`python -m app.worker`) starts after the API process holding the session died."""

import asyncio
import sys
import time
import uuid

import httpx
import psycopg

from tests.production.service import ROOT, new_session, new_user, running_service, service_env

REMEMBER = '[tool:remember_this:{"fact": "Keeps bees"}]'


async def run_status(http: httpx.AsyncClient, user, sid: str, run_id: str) -> dict:
    r = await http.get(f"/api/v1/sessions/{sid}/runs/{run_id}", headers=user)
    assert r.status_code == 200, r.text
    return r.json()


async def until_status(http, user, sid, run_id, statuses: set[str], within: float = 20) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:  # bounded
        run = await run_status(http, user, sid, run_id)
        if run["status"] in statuses:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {statuses} within {within} s: {run}")


async def test_double_texting_and_an_approval_across_two_processes(managed_db, fake_llm, tmp_path):
    env = service_env(managed_db.url, fake_llm.base_url)
    async with (
        running_service(env, tmp_path / "a.log") as a,
        running_service(env, tmp_path / "b.log") as b,
        httpx.AsyncClient(base_url=a.base, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base, timeout=30) as on_b,
    ):
        user = await new_user(on_a, f"runs-{uuid.uuid4().hex[:6]}@example.com")
        sid = await new_session(on_a, user)
        fake_llm.token_delay = 0.05
        try:
            words = " ".join(f"w{i}" for i in range(30))
            r = await on_a.post(f"/api/v1/sessions/{sid}/runs", json={"message": words}, headers=user)
            assert r.status_code == 202, r.text
            first = r.json()["id"]
            body = {"message": "queued on b", "multitask": "enqueue"}
            r = await on_b.post(f"/api/v1/sessions/{sid}/runs", json=body, headers=user)
            assert r.status_code == 202 and r.json()["status"] == "pending", r.text
            queued = r.json()["id"]
            body = {"message": "rolled back", "multitask": "reject"}
            r = await on_b.post(f"/api/v1/sessions/{sid}/runs", json=body, headers=user)
            assert r.status_code == 409 and r.json()["error"] == "thread_busy", r.text
            assert (await until_status(on_b, user, sid, first, {"success"}))["status"] == "success"
            assert (await until_status(on_a, user, sid, queued, {"success"}))["status"] == "success"
        finally:
            fake_llm.token_delay = 0.0

        r = await on_a.post(
            f"/api/v1/sessions/{sid}/runs", json={"message": f"note {REMEMBER}"}, headers=user
        )
        assert r.status_code == 202, r.text
        waiting = await until_status(on_b, user, sid, r.json()["id"], {"interrupted"})
        assert waiting["interrupt"]["tool_calls"][0]["args"] == {"fact": "Keeps bees"}
        url = f"/api/v1/sessions/{sid}/runs/{waiting['id']}/resume"
        r = await on_b.post(url, json={"decision": "approve"}, headers=user)
        assert r.status_code == 202, r.text
        assert (await until_status(on_a, user, sid, waiting["id"], {"success"}))["status"] == "success"
        memories = (await on_a.get("/api/v1/memories", headers=user)).json()["items"]
        assert "Keeps bees" in [m["text"] for m in memories]

        history = (await on_b.get(f"/api/v1/sessions/{sid}/history", headers=user)).json()
        assert [t["message"] for t in history["items"]][1:] == ["queued on b", words]
        fork = {"message": "instead", "from_turn": history["items"][1]["turn_id"]}
        r = await on_b.post(f"/api/v1/sessions/{sid}/runs", json=fork, headers=user)
        assert r.status_code == 202, r.text
        assert (await until_status(on_a, user, sid, r.json()["id"], {"success"}))["status"] == "success"
        items = (await on_a.get(f"/api/v1/sessions/{sid}/messages", headers=user)).json()["items"]
        assert [m["content"] for m in items if m["role"] == "user"] == [words, "instead"]


async def test_the_worker_starts_a_queued_run_after_the_api_process_died(managed_db, fake_llm, tmp_path):
    env = service_env(managed_db.url, fake_llm.base_url, LEASE_TTL_SECONDS="3")
    worker_log = tmp_path / "worker.log"
    with worker_log.open("ab") as out:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.worker",
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with running_service(env, tmp_path / "api.log") as api:
            async with httpx.AsyncClient(base_url=api.base, timeout=30) as http:
                user = await new_user(http, f"worker-{uuid.uuid4().hex[:6]}@example.com")
                sid = await new_session(http, user)
                fake_llm.latency = 30.0  # the first run is still waiting on the model when its process dies
                r = await http.post(f"/api/v1/sessions/{sid}/runs", json={"message": "slow"}, headers=user)
                assert r.status_code == 202, r.text
                first = r.json()["id"]
                body = {"message": "after the crash", "multitask": "enqueue"}
                r = await http.post(f"/api/v1/sessions/{sid}/runs", json=body, headers=user)
                assert r.status_code == 202 and r.json()["status"] == "pending", r.text
                queued = r.json()["id"]
                api.kill()
            fake_llm.latency = 0.0
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + 30
        async with await psycopg.AsyncConnection.connect(managed_db.url, autocommit=True) as conn:
            while time.monotonic() < deadline:  # bounded: the lease (3 s) expires, the worker looks every 1 s
                cur = await conn.execute("SELECT id::text, status FROM run WHERE session_id = %s", (sid,))
                statuses = dict(await cur.fetchall())
                if statuses.get(queued) == "success" and statuses.get(first) == "error":
                    break
                await asyncio.sleep(0.2)
            cur = await conn.execute(
                "SELECT m.content FROM message m JOIN thread t ON t.id = m.thread_id WHERE t.session_id = %s"
                " ORDER BY m.id",
                (sid,),
            )
            transcript = [row[0] for row in await cur.fetchall()]
        assert statuses == {first: "error", queued: "success"}, (statuses, worker_log.read_text()[-3000:])
        assert transcript == ["after the crash", "Echo: after the crash"]
        assert queued in worker_log.read_text()  # the worker, the only process left, ran it
    finally:
        fake_llm.latency = 0.0
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
