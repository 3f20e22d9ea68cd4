"""The database wing: URLs, the embedded default, migrations, and the connection pools.

Which SQL goes through which pool (one PostgreSQL, two pools per process, both built here):
- `Database.pool`, psycopg, autocommit: single statements on the path of every request and turn
  (rate limits, token checks, the lease, recording a turn, memory reads, the job queue), and LangGraph's
  checkpointer. One statement, one round trip, no BEGIN/COMMIT: the turn's latency is the product.
- `Database.sessions`, SQLAlchemy: units of work that need a transaction (sign-up, deleting a session or
  an account, admin changes). A request's session commits once, at its end.
- mem0's writes go through a small synchronous psycopg pool of their own (mem0 is synchronous): see
  app/agent/memory/store.py.
"""

from app.db.database import Database, open_database
from app.db.urls import DatabaseUrls, normalise_url

__all__ = ["Database", "DatabaseUrls", "normalise_url", "open_database"]
