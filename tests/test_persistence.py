"""The embedded default: history survives a restart of the service on the same data directory."""

from pathlib import Path

from tests.conftest import asgi_client, auth, make_settings, new_session, running_app

PASSWORD = "Restart!1x"


async def test_second_app_on_same_data_dir_sees_history(tmp_path_factory, fake_llm):
    data_dir: Path = tmp_path_factory.mktemp("restart-data")
    # No DATABASE_URL: the service starts (or reuses) the embedded PostgreSQL under DATA_DIR.
    settings = make_settings("", fake_llm, data_dir=data_dir)
    async with running_app(settings) as app, asgi_client(app) as client:
        r = await client.post(
            "/api/v1/auth/register", json={"email": "keep@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
        token = (
            await client.post(
                "/api/v1/auth/login", data={"username": "keep@example.com", "password": PASSWORD}
            )
        ).json()
        user = {"Authorization": f"Bearer {token['access_token']}"}
        sid = await new_session(client, user, "kept")
        r = await client.post(
            f"/api/v1/sessions/{sid}/chat", json={"message": "remember me"}, headers=auth(user)
        )
        assert r.status_code == 200
    assert (data_dir / "pgdata" / "PG_VERSION").exists()

    async with running_app(settings) as app, asgi_client(app) as client:
        # The old token still works: it is signed, not stored in process memory.
        r = await client.get(f"/api/v1/sessions/{sid}/messages", headers=auth(user))
        assert [m["content"] for m in r.json()["items"]] == ["remember me", "Echo: remember me"]
        r = await client.post(
            f"/api/v1/sessions/{sid}/chat", json={"message": "still there?"}, headers=auth(user)
        )
        assert r.status_code == 200
        sent = [m["content"] for m in fake_llm.chat_requests[-1]["messages"] if m["role"] != "system"]
        assert sent == ["remember me", "Echo: remember me", "still there?"]


async def _start_service(data_dir: Path, llm_url: str):
    import asyncio
    import os
    import sys

    import httpx

    from tests.conftest import free_port

    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": "",
        "LLM_BASE_URL": llm_url,
        "LLM_MODEL": "fake-model",
        "BCRYPT_ROUNDS": "4",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(300):
            try:
                if (await http.get("/ready")).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("service did not become ready")


async def test_history_survives_a_real_process_restart(tmp_path_factory, fake_llm):
    import httpx

    data_dir: Path = tmp_path_factory.mktemp("restart-proc")
    proc, base = await _start_service(data_dir, fake_llm.base_url)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await http.post("/api/v1/auth/register", json={"email": "p@example.com", "password": PASSWORD})
            token = (
                await http.post(
                    "/api/v1/auth/login", data={"username": "p@example.com", "password": PASSWORD}
                )
            ).json()
            user = {"Authorization": f"Bearer {token['access_token']}"}
            sid = (await http.post("/api/v1/sessions", json={"name": "kept"}, headers=user)).json()["id"]
            r = await http.post(f"/api/v1/sessions/{sid}/chat", json={"message": "persist"}, headers=user)
            assert r.status_code == 200
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status.
        assert await proc.wait() in (0, -15)
    # The embedded server stops with the last process that used it (pgserver stops it on exit).
    import asyncio
    import time

    started = time.monotonic()
    while (data_dir / "pgdata" / "postmaster.pid").exists() and time.monotonic() - started < 15:
        await asyncio.sleep(0.1)
    print(f"postgres stopped after {time.monotonic() - started:.2f}s")
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()

    proc, base = await _start_service(data_dir, fake_llm.base_url)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            r = await http.get(f"/api/v1/sessions/{sid}/messages", headers=user)
            assert [m["content"] for m in r.json()["items"]] == ["persist", "Echo: persist"]
    finally:
        proc.terminate()
        await proc.wait()
