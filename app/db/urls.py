"""One database URL, spelled for SQLAlchemy and for plain psycopg."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatabaseUrls:
    sqlalchemy: str
    psycopg: str


def normalise_url(url: str) -> DatabaseUrls:
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            return DatabaseUrls(f"postgresql+psycopg://{rest}", f"postgresql://{rest}")
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://user:pass@host:port/db)")
