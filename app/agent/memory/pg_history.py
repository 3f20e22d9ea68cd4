"""mem0's history store in PostgreSQL, in place of the SQLite file it keeps by default.

mem0 calls these methods synchronously from its worker threads, hence the sync pool. Rows carry the
user's id (a foreign key, so deleting the user deletes them): mem0 does not pass it, so it is read
from the memory's own row, or from its earlier history once the memory itself is gone.
"""

from typing import Any
from urllib.parse import unquote

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

_ADD = """
INSERT INTO memory_history
    (memory_id, user_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role)
VALUES (%(memory_id)s, COALESCE(
        (SELECT m.user_id FROM {table} m WHERE m.id = %(memory_id)s),
        (SELECT h.user_id FROM memory_history h WHERE h.memory_id = %(memory_id)s LIMIT 1)),
    %(old_memory)s, %(new_memory)s, %(event)s, %(created_at)s, %(updated_at)s, %(is_deleted)s,
    %(actor_id)s, %(role)s)
"""

_HISTORY = """
SELECT id, memory_id::text AS memory_id, old_memory, new_memory, event, created_at, updated_at,
       is_deleted, actor_id, role
FROM memory_history WHERE memory_id = %s ORDER BY id
"""

_LAST_MESSAGES = """
SELECT role, content, name, created_at FROM (
    SELECT id, role, content, name, created_at FROM memory_message
    WHERE user_id = %s ORDER BY id DESC LIMIT %s
) recent ORDER BY id
"""

_KEEP_MESSAGES = 10  # as many as mem0 shows its extraction prompt

# One round trip: the new messages in, and the user's older ones beyond the last few out. The DELETE
# sees the table as it was before the INSERT, hence `keep` is the number of older ones to keep.
_SAVE_MESSAGES = """
WITH added AS (
    INSERT INTO memory_message (user_id, role, content, name)
    SELECT %(user)s, role, content, name
    FROM unnest(%(roles)s::text[], %(contents)s::text[], %(names)s::text[]) AS m(role, content, name)
)
DELETE FROM memory_message WHERE user_id = %(user)s AND id NOT IN (
    SELECT id FROM memory_message WHERE user_id = %(user)s ORDER BY id DESC LIMIT %(keep)s)
"""


def _user_of(session_scope: str) -> str | None:
    """mem0's scope is "user_id=<id>[&run_id=...]"; memories here are always per user."""
    for part in session_scope.split("&"):
        key, _, value = part.partition("=")
        if key == "user_id" and value:
            return unquote(value)
    return None


class PostgresHistory:
    """Duck-types mem0's SQLiteManager (the methods mem0 calls)."""

    def __init__(self, pool: ConnectionPool[Any], vector_table: str) -> None:
        self._pool = pool
        self._add = _ADD.format(table=vector_table)

    def add_history(
        self,
        memory_id: str,
        old_memory: str | None,
        new_memory: str | None,
        event: str,
        *,
        created_at: str | None = None,
        updated_at: str | None = None,
        is_deleted: int = 0,
        actor_id: str | None = None,
        role: str | None = None,
    ) -> None:
        self.batch_add_history(
            [
                {
                    "memory_id": memory_id,
                    "old_memory": old_memory,
                    "new_memory": new_memory,
                    "event": event,
                    "created_at": created_at,
                    "updated_at": updated_at,
                    "is_deleted": is_deleted,
                    "actor_id": actor_id,
                    "role": role,
                }
            ]
        )

    def batch_add_history(self, records: list[dict[str, Any]]) -> None:
        rows = [
            {
                "memory_id": r.get("memory_id"),
                "old_memory": r.get("old_memory"),
                "new_memory": r.get("new_memory"),
                "event": r.get("event"),
                "created_at": r.get("created_at"),
                "updated_at": r.get("updated_at") or r.get("created_at"),
                "is_deleted": bool(r.get("is_deleted", 0)),
                "actor_id": r.get("actor_id"),
                "role": r.get("role"),
            }
            for r in records
        ]
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(self._add, rows)

    def get_history(self, memory_id: str) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_HISTORY, (memory_id,))
            rows: list[dict[str, Any]] = cur.fetchall()
        return rows

    def save_messages(self, messages: list[dict[str, Any]], session_scope: str) -> None:
        user_id = _user_of(session_scope)
        if not messages or user_id is None:
            return
        rows = {
            "user": user_id,
            "roles": [m.get("role") for m in messages],
            "contents": [m.get("content") for m in messages],
            "names": [m.get("name") for m in messages],
            "keep": max(0, _KEEP_MESSAGES - len(messages)),
        }
        with self._pool.connection() as conn:
            conn.execute(_SAVE_MESSAGES, rows)

    def get_last_messages(self, session_scope: str, limit: int = 10) -> list[dict[str, Any]]:
        user_id = _user_of(session_scope)
        if user_id is None:
            return []
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_LAST_MESSAGES, (user_id, limit))
            rows: list[dict[str, Any]] = cur.fetchall()
        return rows

    def reset(self) -> None:
        raise RuntimeError("Resetting every user's memory history is not supported here.")

    def close(self) -> None:
        """The pool belongs to the memory store, which closes it."""
