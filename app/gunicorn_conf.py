"""Gunicorn settings: uvicorn workers; with DATABASE_URL, the master applies migrations once."""

import asyncio
from typing import TYPE_CHECKING

from app.config import load_settings, skip_migrations_in_child_processes
from app.db import normalise_url
from app.db.migrations import DatabaseSetupError, upgrade_to_head

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# load_settings(), not get_settings(): a cached Settings would be inherited by the forked workers and
# hide the RUN_MIGRATIONS_ON_START=false that on_starting hands them.
_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_concurrency
# Deprecated in uvicorn in favour of the uvicorn-worker package, which is not in requirements.lock yet.
worker_class = "uvicorn.workers.UvicornWorker"
# A worker's boot counts against this: its lifespan may start the embedded PostgreSQL or wait for the
# migration lock a sibling holds. Once serving, the event loop's heartbeat is independent of LLM time.
timeout = 120
# On SIGTERM each worker stops taking turns and gives those in flight SHUTDOWN_GRACE_SECONDS; a turn
# cut short leaves no half state (its checkpoint pointer does not move) and its lease is released.
graceful_timeout = int(_settings.shutdown_grace_seconds) + 5
keepalive = 5
# The app writes its own structured logs; gunicorn's access lines would duplicate them.
accesslog = None
# Gunicorn's control socket sits at one path per user, which two masters on a host would share.
control_socket_disable = True


def on_starting(server: "Arbiter") -> None:
    """Migrate in the master, once, before any worker exists (a HUP reload does not re-run it).

    Without DATABASE_URL no migration happens here: each worker starts or joins the embedded PostgreSQL
    itself, and their start-up migrations are serialised by the advisory lock in app/schema.py.
    """
    _reset_metrics_dir()
    if not (_settings.database_url and _settings.run_migrations_on_start):
        return
    try:
        asyncio.run(upgrade_to_head(normalise_url(_settings.database_url).sqlalchemy))
    except DatabaseSetupError as exc:
        raise SystemExit(f"error: {exc}") from None  # one line for the operator, no traceback
    # Workers are forked from this process, so they inherit the variable and skip the lock round trip.
    skip_migrations_in_child_processes()
    server.log.info("Migrations applied by the master; workers skip them")


def _reset_metrics_dir() -> None:
    """Multiprocess metrics: files an earlier run left would be added to this run's numbers."""
    directory = _settings.prometheus_multiproc_dir
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: "Arbiter", worker: "Worker") -> None:
    """A dead worker's live gauges (open streams, pool connections) stop counting; its counters stay."""
    if _settings.prometheus_multiproc_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, str(_settings.prometheus_multiproc_dir))  # type: ignore[no-untyped-call]
