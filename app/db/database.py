"""Database: the engine and the psycopg pool of one process, opened and closed together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from time import monotonic
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event, exc
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


# After a PostgreSQL restart every pooled connection is dead: a ping on checkout replaces it instead
# of failing the request that drew it. Only a connection idle for longer than this is pinged: one in
# steady use is known to be alive, and one that broke in use is discarded when it comes back.
IDLE_BEFORE_PING_SECONDS = 2.0


def create_engine(urls: DatabaseUrls, settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        urls.sqlalchemy,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if monotonic() - record.info.get("returned_at", 0.0) <= IDLE_BEFORE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError() from error  # the pool connects anew and retries
            raise

    return engine


class _IdleCheck:
    """The psycopg pool's counterpart: ping on checkout only a connection that sat idle."""

    def __init__(self) -> None:
        self._returned: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()

    async def check(self, conn: AsyncConnection[Any]) -> None:
        if monotonic() - self._returned.get(conn, 0.0) > IDLE_BEFORE_PING_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

    async def returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = monotonic()


def create_pool(url: str, settings: Settings) -> AsyncConnectionPool:
    idle = _IdleCheck()
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=settings.checkpoint_pool_size,
        open=False,
        # Checked on checkout if idle, so a connection that died with the server is replaced, not used.
        check=idle.check,
        reset=idle.returned,
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
