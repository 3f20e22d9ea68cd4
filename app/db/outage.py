"""Telling a database outage (server down, restarting, unreachable, pool exhausted) from a bug."""

import psycopg
import sqlalchemy.exc
from psycopg_pool import PoolTimeout


def is_outage(exc: BaseException) -> bool:
    """True for failures that come from the database being unreachable, never from the query itself.

    psycopg's OperationalError covers refused and broken connections and a server shutting down
    (AdminShutdown, CannotConnectNow); SQLAlchemy wraps the same and adds its own pool timeout.
    """
    if isinstance(exc, PoolTimeout | psycopg.OperationalError | sqlalchemy.exc.TimeoutError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    return False
