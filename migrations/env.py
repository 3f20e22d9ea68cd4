"""Alembic environment: our tables only; LangGraph's and mem0's tables are never touched."""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers the tables)

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Autogenerate would otherwise emit drop_table for checkpoints, checkpoint_blobs,
    # checkpoint_writes, checkpoint_migrations and mem0's tables, which live in the same schema.
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
    )


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    import asyncio

    from app.config import get_settings
    from app.db import resolve_database_urls

    settings = get_settings()
    if not settings.database_url:
        raise SystemExit(
            "Set DATABASE_URL for alembic commands, or run the service: it migrates the embedded database on start."
        )
    return asyncio.run(resolve_database_urls(settings))[0].sqlalchemy


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
