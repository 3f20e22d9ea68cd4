"""Metrics across gunicorn workers: PROMETHEUS_MULTIPROC_DIR, the master's reset, dead workers' gauges."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from app.observability.metrics import check_multiprocess
from tests.conftest import auth, free_port, new_session, register
from tests.deploy.test_gunicorn import (
    load_conf,
    server_env,
    start_gunicorn,
    stop,
    wait_for_log,
    wait_until_healthy,
)
from tests.observability.scrape import Scrape, parse

ROOT = Path(__file__).resolve().parents[2]
CHAT = "/api/v1/sessions/{session_id}/chat"


def in_multiprocess_mode(code: str, directory: Path) -> str:
    env = {
        **os.environ,
        "APP_ENV": "test",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counters_add_up_across_processes_and_a_dead_workers_gauges_stop_counting(tmp_path, monkeypatch):
    worker = (
        "import os\n"
        "from app.observability import metrics\n"
        "metrics.HTTP_REQUESTS.labels('GET', '/health', '200').inc()\n"
        "metrics.ACTIVE_STREAMS.inc()\n"
        "print(os.getpid())\n"
    )
    pids = [int(in_multiprocess_mode(worker, tmp_path)) for _ in range(2)]
    render = "from app.observability import metrics\nprint(metrics.exposition()[0].decode())"
    before = parse(in_multiprocess_mode(render, tmp_path))
    assert before.value("http_requests_total", method="GET", route="/health", status="200") == 2
    assert before.value("agent_active_streams") == 2

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    load_conf().child_exit(SimpleNamespace(), SimpleNamespace(pid=pids[0]))
    after = parse(in_multiprocess_mode(render, tmp_path))
    assert after.value("http_requests_total", method="GET", route="/health", status="200") == 2
    assert after.value("agent_active_streams") == 1


def test_the_master_empties_the_directory_before_workers_start(tmp_path, monkeypatch):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_12345.db").write_bytes(b"left over")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    load_conf().on_starting(SimpleNamespace())
    assert directory.is_dir() and list(directory.iterdir()) == []


def test_a_directory_only_in_settings_is_refused():
    # This process runs prometheus-client in single-process mode, as the environment decided at import.
    check_multiprocess(None)
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        check_multiprocess(Path("/tmp/somewhere"))


async def scrape_fresh(base: str) -> Scrape:
    """A new connection per scrape: gunicorn's workers share the socket, so any of them may answer."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        r = await http.get("/metrics")
        assert r.status_code == 200
        return parse(r.text)


async def test_gunicorn_workers_report_one_sum(pg_url, fake_llm, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_12345.db").write_bytes(b"left over by an earlier run")
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = server_env(pg_url, fake_llm.base_url, port) | {
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "CHECKPOINT_POOL_SIZE": "3",
    }
    proc = await start_gunicorn(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await wait_until_healthy(http, proc, log)
            await wait_for_log(log, "Application startup complete", 2)
            user = await register(http)
            sid = await new_session(http, user)
        turns = 4
        for _ in range(turns):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                r = await http.post(CHAT.format(session_id=sid), json={"message": "hi"}, headers=auth(user))
                assert r.status_code == 200, r.text
        assert not (directory / "counter_12345.db").exists()
        # A request is counted just after its response is sent: another worker may answer first.
        await asyncio.sleep(0.2)
        for _ in range(3):
            scrape = await scrape_fresh(base)
            assert scrape.value("http_requests_total", method="POST", route=CHAT, status="200") == turns
            assert scrape.value("agent_llm_latency_seconds_count", model="fake-model") == turns
        # Each worker copies its pools into the shared files every few seconds; the sum covers both.
        deadline = time.monotonic() + 15
        while (await scrape_fresh(base)).value("db_pool_max", pool="psycopg") != 2 * 3:
            assert time.monotonic() < deadline, (await scrape_fresh(base)).text
            await asyncio.sleep(0.5)
    finally:
        if proc.returncode is None:
            workers = [child.pid for child in psutil.Process(proc.pid).children()]
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=45)
            except TimeoutError:
                stop([proc.pid, *workers])
                await proc.wait()
