"""kill -9 of the process running a background run: another replica reports the run lost within the
15 s crash window, its stream ends with that error, and the session takes a new run."""

import asyncio
import time
import uuid

import httpx

from tests.production.service import new_session, new_user, service_env, start_service
from tests.reporting import report

CRASH_WINDOW = 15.0


async def test_kill_9_of_a_running_run_is_reported_lost_within_15_s(managed_db, fake_llm, tmp_path):
    env = service_env(managed_db.url, fake_llm.base_url)
    first = await start_service(env, tmp_path / "first.log")
    second = await start_service(env, tmp_path / "second.log")
    try:
        async with httpx.AsyncClient(base_url=first.base, timeout=30) as http:
            user = await new_user(http, f"run-crash-{uuid.uuid4().hex[:6]}@example.com")
            sid = await new_session(http, user)
            fake_llm.latency = 8.0  # the model is still thinking when the process dies
            r = await http.post(f"/api/v1/sessions/{sid}/runs", json={"message": "slow one"}, headers=user)
            assert r.status_code == 202, r.text
            run_id = r.json()["id"]
            for _ in range(100):  # the model call has started
                if fake_llm.chat_requests:
                    break
                await asyncio.sleep(0.05)
            first.kill()
            killed_at = time.monotonic()
        async with httpx.AsyncClient(base_url=second.base, timeout=30) as http:
            url = f"/api/v1/sessions/{sid}/runs/{run_id}"
            status = None
            while time.monotonic() - killed_at < CRASH_WINDOW + 5:  # bounded
                status = (await http.get(url, headers=user)).json()
                if status["status"] != "running":
                    break
                await asyncio.sleep(0.25)
            seen_after = time.monotonic() - killed_at
            report("a killed process's run reported lost after", f"{seen_after:.1f} s")
            assert status is not None and status["status"] == "error" and status["error"] == "run_lost", (
                status
            )
            assert seen_after <= CRASH_WINDOW, seen_after
            stream = (await http.get(f"{url}/stream", headers=user)).text
            assert "event: error" in stream and "run_lost" in stream
            fake_llm.latency = 0.0
            r = await http.post(f"/api/v1/sessions/{sid}/runs", json={"message": "again"}, headers=user)
            assert r.status_code == 202, r.text
    finally:
        fake_llm.latency = 0.0
        for service in (first, second):
            if service.proc.returncode is None:
                service.proc.kill()
            await service.proc.wait()
