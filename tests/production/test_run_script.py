"""`make run`'s script, stopped by SIGTERM as a service manager or `kill` would: it takes the server
down with it, so the port is free for the next start."""

import asyncio
import sys
import time

import httpx
import psutil

from tests.conftest import free_port
from tests.production.service import ROOT, service_env


async def test_sigterm_to_the_run_script_stops_the_server_too(managed_db, fake_llm, tmp_path):
    port = free_port()
    env = service_env(managed_db.url, fake_llm.base_url, PORT=str(port), DATA_DIR=str(tmp_path))
    log = tmp_path / "run.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "scripts/run.py", env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            for _ in range(300):  # bounded: 30 s
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(log.read_text())
        server = psutil.Process(proc.pid).children()
        assert server, "the script started no server"
        proc.terminate()
        started = time.monotonic()
        await asyncio.wait_for(proc.wait(), timeout=30)
        assert time.monotonic() - started < 30
        assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in server)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
