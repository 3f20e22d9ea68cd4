"""Migrations: from an empty database to head, and autogenerate never touches LangGraph's tables."""

import pytest
from alembic import command
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import create_engine, inspect, text

from app.agent.checkpointer import open_checkpointer
from app.db import normalise_url
from app.db.migrations import alembic_config, head_revision, upgrade_to_head
from tests.conftest import scratch_database


@pytest.fixture
def empty_database(pg_url: str):
    with scratch_database(pg_url, "mig") as url:
        yield normalise_url(url)


async def test_upgrade_from_empty_creates_our_tables(empty_database):
    await upgrade_to_head(empty_database.sqlalchemy)
    engine = create_engine(empty_database.sqlalchemy)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert {"user", "session", "thread", "message"} <= tables
    assert version == head_revision()


async def test_upgrade_is_idempotent_and_downgrade_works(empty_database):
    await upgrade_to_head(empty_database.sqlalchemy)
    await upgrade_to_head(empty_database.sqlalchemy)
    engine = create_engine(empty_database.sqlalchemy)
    with engine.connect() as conn:
        cfg = alembic_config(empty_database.sqlalchemy)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
        assert "session" not in inspect(conn).get_table_names()
    engine.dispose()


async def test_autogenerate_sees_no_changes_and_leaves_checkpoint_tables(empty_database):
    await upgrade_to_head(empty_database.sqlalchemy)
    async with AsyncConnectionPool(
        empty_database.psycopg, min_size=1, max_size=1, kwargs={"autocommit": True, "row_factory": dict_row}
    ) as pool:
        await open_checkpointer(pool, empty_database.psycopg, cache_entries=0)
    engine = create_engine(empty_database.sqlalchemy)
    with engine.connect() as conn:
        cfg = alembic_config(empty_database.sqlalchemy)
        cfg.attributes["connection"] = conn
        # `check` fails if autogenerate would emit any operation, such as dropping checkpoints.
        command.check(cfg)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"} <= tables
