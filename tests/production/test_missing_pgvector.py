"""A managed database without pgvector, its role unable to create it: every way of starting stops with
the line saying what a superuser must run, before anything that needs pgvector (mem0) is reached, and
leaves the database as it was."""

import pytest

from app.db.migrations import DatabaseSetupError
from tests.conftest import free_port, make_settings, running_app
from tests.production.commands import (
    PGVECTOR_HINT,
    VENV_BIN,
    alembic_upgrade,
    has_pgvector,
    operator_env,
    public_tables,
    run_to_end,
)


def assert_untouched(url: str) -> None:
    """All revisions run in one transaction: a failed start leaves the database as it was handed over."""
    assert not has_pgvector(url)
    assert public_tables(url) == set()


def server_env(url: str, fake_llm, **extra: str) -> dict[str, str]:
    return operator_env(
        url,
        APP_ENV="test",
        LLM_BASE_URL=fake_llm.base_url,
        LLM_API_KEY="test",
        LLM_MODEL="fake-model",
        **extra,
    )


def hint_lines(output: str) -> list[str]:
    """The lines saying what to do; never the error of a later step that ran without pgvector."""
    assert 'type "vector" does not exist' not in output
    assert "mem0" not in output
    lines = [line for line in output.splitlines() if PGVECTOR_HINT in line]
    for line in lines:
        assert "may not create the pgvector extension" in line and "superuser" in line, line
    return lines


def assert_one_clear_line(output: str) -> str:
    lines = hint_lines(output)
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


async def test_alembic_stops_with_one_line_and_the_line_is_the_fix(external_pg, managed_db_without_vector):
    url = managed_db_without_vector.url
    done = await alembic_upgrade(url)
    assert done.code != 0, done.output
    line = assert_one_clear_line(done.output)
    assert line.startswith("FAILED: ") and repr(managed_db_without_vector.database) in line, line
    assert_untouched(url)
    # What the line says, done by an administrator; then the same command succeeds.
    external_pg.sql(PGVECTOR_HINT, database=managed_db_without_vector.database)
    done = await alembic_upgrade(url)
    assert done.code == 0, done.output
    assert "memory_job" in public_tables(url)


async def test_the_lifespan_raises_database_setup_error(managed_db_without_vector, fake_llm):
    url = managed_db_without_vector.url
    with pytest.raises(DatabaseSetupError) as raised:
        async with running_app(make_settings(url, fake_llm)):
            pytest.fail("the app started without pgvector")
    assert PGVECTOR_HINT in str(raised.value)
    assert_untouched(url)


async def test_uvicorn_exits_with_the_clear_line(managed_db_without_vector, fake_llm):
    args = [
        str(VENV_BIN / "python"), "-m", "uvicorn", "app.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(free_port()),
    ]  # fmt: skip
    done = await run_to_end(args, server_env(managed_db_without_vector.url, fake_llm), timeout=60)
    assert done.code != 0, done.output
    # The app logs the line; uvicorn then prints any failed start-up's traceback, which here stops at
    # the lifespan: nothing from the migration, the database driver or memory below it.
    assert hint_lines(done.output), done.output
    frames = [line for line in done.output.splitlines() if line.strip().startswith('File "')]
    assert not [
        f for f in frames if any(deep in f for deep in ("alembic", "sqlalchemy", "psycopg", "app/db"))
    ]
    assert "Application startup failed" in done.output
    assert_untouched(managed_db_without_vector.url)


async def test_gunicorn_master_exits_with_one_error_line(managed_db_without_vector, fake_llm):
    args = [str(VENV_BIN / "gunicorn"), "-c", "app/gunicorn_conf.py", "app.main:create_app()"]
    env = server_env(
        managed_db_without_vector.url, fake_llm, HOST="127.0.0.1", PORT=str(free_port()), WEB_CONCURRENCY="2"
    )
    done = await run_to_end(args, env, timeout=60)
    assert done.code != 0, done.output
    assert assert_one_clear_line(done.output).startswith("error: The role ")
    assert "Booting worker" not in done.output
    assert_untouched(managed_db_without_vector.url)
