"""The deployment's own commands on a managed database: gunicorn with memory on, migrating in its master;
and docker-compose's `migrate` then `app` services, run here without Docker from what the compose file
and the Dockerfile say."""

import asyncio
import contextlib
import json
import re
import secrets
import shlex
import shutil
import signal
import time
from pathlib import Path

import httpx
import psutil
import yaml

from app.db.migrations import head_revision
from tests.conftest import free_port
from tests.deploy.test_gunicorn import start_gunicorn, stop, wait_for_log, wait_until_healthy
from tests.production.commands import (
    ROOT,
    VENV_BIN,
    operator_env,
    query,
    recall_across_sessions,
    run_to_end,
    wait_for_memory,
)
from tests.reporting import report

MIGRATED_BY_MASTER = "Migrations applied by the master"
GRACE = 10  # SHUTDOWN_GRACE_SECONDS; gunicorn's graceful_timeout is 5 s more


async def kill_tree(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            stop([proc.pid, *(child.pid for child in psutil.Process(proc.pid).children())])
        await proc.wait()


async def stop_on_sigterm(proc: asyncio.subprocess.Process, log: Path, *, within: float) -> float:
    """SIGTERM, then the seconds until the master exited 0 with its workers (within gunicorn's grace)."""
    workers = [child.pid for child in psutil.Process(proc.pid).children()]
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = await asyncio.wait_for(proc.wait(), timeout=within)
    took = time.monotonic() - started
    assert code == 0, log.read_text()
    assert not any(psutil.pid_exists(pid) for pid in workers)
    return took


async def test_gunicorn_migrates_once_and_two_workers_serve_with_memory(managed_db, fake_llm, tmp_path):
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = operator_env(
        managed_db.url, APP_ENV="test", RUN_MIGRATIONS_ON_START="true", MEMORY_ENABLED="true",
        WEB_CONCURRENCY="2", HOST="127.0.0.1", PORT=str(port), SHUTDOWN_GRACE_SECONDS=str(GRACE),
        LLM_BASE_URL=fake_llm.base_url, LLM_API_KEY="test", LLM_MODEL="fake-model", BCRYPT_ROUNDS="4",
    )  # fmt: skip
    proc = await start_gunicorn(env, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_healthy(http, proc, log)
            await wait_for_log(log, "Application startup complete", 2)
            assert len(psutil.Process(proc.pid).children()) == 2, log.read_text()
            assert (await http.get("/api/v1/ready")).status_code == 200
            await recall_across_sessions(
                http, fake_llm, settle=lambda user, fact: wait_for_memory(http, user, fact)
            )
        took = await stop_on_sigterm(proc, log, within=GRACE + 5)
        report("gunicorn (2 workers, memory on): seconds from SIGTERM to exit 0", f"{took:.2f}")
    finally:
        await kill_tree(proc)
    output = log.read_text()
    assert output.count(MIGRATED_BY_MASTER) == 1, output
    assert query(managed_db.url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


# --- docker-compose, without Docker

_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}, from the operator's .env."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if variables.get(name):
            return variables[name]
        assert op is None or "?" not in op, f"compose refuses to start without {name}: {arg}"
        return arg or ""

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


def dockerfile_runtime(
    dockerfile: str, paths: dict[str, Path]
) -> tuple[dict[str, str], list[str], list[str]]:
    """The final stage's ENV (its container paths mapped to this machine's), ENTRYPOINT and CMD."""
    final = re.split(r"^FROM ", dockerfile.replace("\\\n", " "), flags=re.M)[-1]
    env: dict[str, str] = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in final.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                for container, here in paths.items():
                    value = re.sub(rf"(^|:){re.escape(container)}(?=/|:|$)", rf"\g<1>{here}", value)
                env[name] = value.replace("$PATH", env["PATH"])
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif instruction == "CMD":
            cmd = json.loads(rest)
    return env, entrypoint, cmd


def resolve(command: list[str], env: dict[str, str]) -> list[str]:
    program = shutil.which(command[0], path=env["PATH"])
    assert program is not None and Path(program).parent == VENV_BIN, (command[0], env["PATH"])
    return [program, *command[1:]]


async def test_compose_migrate_then_app_on_a_managed_database(managed_db, fake_llm, tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    image_env, entrypoint, image_cmd = dockerfile_runtime(
        (ROOT / "Dockerfile").read_text(),
        {"/opt/venv": VENV_BIN.parent, "/app": ROOT, "/home/app": tmp_path / "home"},
    )
    assert image_env["PYTHONPATH"] == str(ROOT)
    dotenv = {  # what .env.compose.example asks an operator to fill in
        "POSTGRES_PASSWORD": secrets.token_hex(8),
        "JWT_SECRET_KEY": secrets.token_urlsafe(36),
        "LLM_BASE_URL": fake_llm.base_url,
    }
    assert len(dotenv["JWT_SECRET_KEY"]) == 48

    def service_env(name: str, **here: str) -> dict[str, str]:
        declared = {k: interpolate(str(v), dotenv) for k, v in compose[name]["environment"].items()}
        assert "DATABASE_URL" in declared  # replaced: the database is the managed one, not `db`
        return {**image_env, "HOME": str(tmp_path / "home"), **declared, **here}

    def service_command(name: str, env: dict[str, str]) -> list[str]:
        service = compose[name]
        command = [*service.get("entrypoint", entrypoint), *service.get("command", image_cmd)]
        assert command, f"neither the compose file nor the Dockerfile says what {name} runs"
        return resolve(command, env)

    migrate_env = service_env("migrate", DATABASE_URL=managed_db.url)
    done = await run_to_end(service_command("migrate", migrate_env), migrate_env)
    assert done.code == 0, done.output
    assert query(managed_db.url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]

    port, log = free_port(), tmp_path / "app.log"
    app_env = service_env(
        "app", DATABASE_URL=managed_db.url, HOST="127.0.0.1", PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )  # fmt: skip
    assert (app_env["APP_ENV"], app_env["RUN_MIGRATIONS_ON_START"]) == ("production", "false")
    assert app_env["JWT_SECRET_KEY"] == dotenv["JWT_SECRET_KEY"]
    # Only the worker service consumes memory jobs: the recall below proves it ran them.
    assert app_env["MEMORY_JOBS_IN_PROCESS"] == "false"
    worker_env, worker_log = service_env("worker", DATABASE_URL=managed_db.url), tmp_path / "worker.log"
    procs = []
    for name, env, path in (("app", app_env, log), ("worker", worker_env, worker_log)):
        with path.open("wb") as out:
            procs.append(
                await asyncio.create_subprocess_exec(
                    *service_command(name, env),
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                )
            )
    proc, worker = procs
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_healthy(http, proc, log)
            for path in ("/api/v1/health", "/api/v1/ready"):
                r = await http.get(path)
                assert r.status_code == 200, (path, r.text)
            await recall_across_sessions(
                http, fake_llm, settle=lambda user, fact: wait_for_memory(http, user, fact)
            )
        # The default grace (30 s) plus gunicorn's 5; compose's stop_grace_period is longer still.
        took = await stop_on_sigterm(proc, log, within=35)
        report("compose app command: seconds from SIGTERM to exit 0", f"{took:.2f}")
        await stop_on_sigterm(worker, worker_log, within=20)
    finally:
        await kill_tree(proc)
        await kill_tree(worker)
    output = log.read_text()
    assert MIGRATED_BY_MASTER not in output, output
    assert "Traceback" not in output, output
    worker_output = worker_log.read_text()
    assert "worker.started" in worker_output and "Traceback" not in worker_output, worker_output
