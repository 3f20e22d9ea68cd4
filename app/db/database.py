"""Database: the engine and the psycopg pool of one process, opened and closed together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.db.embedded import resolve_database_urls
from app.db.migrations import head_revision, upgrade_to_head
from app.db.urls import DatabaseUrls


@dataclass
class Database:
    urls: DatabaseUrls
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: AsyncConnectionPool  # autocommit, dict rows; shared with the checkpointer
    schema_head: str | None


def create_engine(urls: DatabaseUrls, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        urls.sqlalchemy,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # After a PostgreSQL restart every pooled connection is dead: a ping on checkout replaces it
        # instead of failing the request that drew it.
        pool_pre_ping=True,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


def create_pool(url: str, settings: Settings) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=settings.checkpoint_pool_size,
        open=False,
        # Checked on checkout, so a connection that died with the server is replaced, not used.
        check=AsyncConnectionPool.check_connection,
        timeout=settings.db_pool_timeout,
        # A failed connection attempt is dropped at once rather than retried with a growing back-off:
        # the next request starts a fresh one, so the pool is whole again as soon as the server is.
        reconnect_timeout=0,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": settings.db_connect_timeout,
        },
    )


@asynccontextmanager
async def open_database(settings: Settings, *, migrate: bool | None = None) -> AsyncIterator[Database]:
    """The configured or embedded database, migrated when RUN_MIGRATIONS_ON_START says so."""
    urls, embedded = await resolve_database_urls(settings)
    try:
        if settings.run_migrations_on_start if migrate is None else migrate:
            await upgrade_to_head(urls.sqlalchemy)
        engine = create_engine(urls, settings)
        pool = create_pool(urls.psycopg, settings)
        try:
            await pool.open(wait=True, timeout=max(settings.db_pool_timeout, 10))
            yield Database(
                urls=urls,
                engine=engine,
                sessions=sessionmaker_for(engine),
                pool=pool,
                schema_head=head_revision(),
            )
        finally:
            await pool.close()
            await engine.dispose()
    finally:
        if embedded is not None:
            await embedded.release()


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
