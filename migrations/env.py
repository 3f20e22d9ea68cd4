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


def _run_with_own_engine(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def _run_from_settings() -> None:
    """`alembic upgrade head` from a shell: DATABASE_URL, or the embedded server under DATA_DIR."""
    import asyncio

    from app.config import get_settings
    from app.db.embedded import resolve_database_urls

    urls, embedded = asyncio.run(resolve_database_urls(get_settings()))
    try:
        _run_with_own_engine(urls.sqlalchemy)
    finally:
        if embedded is not None:
            asyncio.run(embedded.release())


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    elif url := config.get_main_option("sqlalchemy.url"):
        _run_with_own_engine(url)
    else:
        _run_from_settings()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
