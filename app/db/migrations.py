"""Applying and checking Alembic migrations from inside the service."""

import asyncio

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import PROJECT_ROOT


class DatabaseSetupError(RuntimeError):
    """The database cannot be brought to the schema this code needs; the message says what to do."""


# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 7_301_442


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://"))
    return script.get_current_head()


def _upgrade(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            # Several workers may start at once; the advisory lock lets one migrate at a time.
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            except BaseException:
                # All revisions run in this one transaction: a failure keeps none of them, as with
                # `alembic upgrade head`, rather than committing below with the unlock.
                conn.rollback()
                raise
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


async def upgrade_to_head(url: str) -> None:
    try:
        await asyncio.to_thread(_upgrade, url)
    except CommandError as exc:  # raised by a migration that cannot proceed (pgvector), with a message
        raise DatabaseSetupError(str(exc)) from None


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
