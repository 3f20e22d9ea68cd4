"""SQL on mem0's pgvector table and our memory history, on the autocommit psycopg pool.

mem0 writes (add, update, delete); reads are ours: one indexed statement each, scoped to the user,
paginated, and with the nearest-neighbour search bounded to that user's rows.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row


@dataclass(frozen=True)
class MemoryRow:
    id: uuid.UUID
    text: str
    created_at: datetime | None
    updated_at: datetime | None
    session_id: str | None
    score: float | None = None


@dataclass(frozen=True)
class HistoryRow:
    id: int
    memory_id: uuid.UUID
    event: str
    old_memory: str | None
    new_memory: str | None
    created_at: datetime | None
    updated_at: datetime | None


# session_id: where an extraction job learned the memory (mem0 metadata; none for memories added by
# hand), read as null once that session is deleted: one primary-key probe per row returned.
_COLUMNS = sql.SQL(
    """id, payload->>'data' AS text, (payload->>'created_at')::timestamptz AS created_at,
    (payload->>'updated_at')::timestamptz AS updated_at,
    CASE WHEN EXISTS (SELECT 1 FROM session s WHERE s.id = (payload->>'session_id')::uuid)
        THEN payload->>'session_id' END AS session_id"""
)
# What the model's context needs of a memory, on every turn: no session probe.
_RECALL_COLUMNS = sql.SQL(
    """id, payload->>'data' AS text, NULL::timestamptz AS created_at, NULL::timestamptz AS updated_at,
    NULL AS session_id"""
)


def _row(r: dict[str, Any]) -> MemoryRow:
    return MemoryRow(**r)


async def nearest(
    conn: AsyncConnection[Any],
    table: str,
    user_id: uuid.UUID,
    vector: list[float],
    limit: int,
    *,
    text_only: bool = False,
) -> list[MemoryRow]:
    """The user's `limit` memories nearest the vector; with `text_only` (recall), only id and text."""
    # An exact scan of this user's rows (found by index): the ranking does not depend on how many
    # other users share the table, and there is no approximate index to tune.
    # The payload's fields are read for the few nearest rows only, not for every row the sort sees.
    query = sql.SQL(
        "SELECT {cols}, 1 - distance AS score FROM ("
        " SELECT id, payload, vector <=> %(v)s::vector AS distance FROM {t}"
        " WHERE user_id = %(u)s ORDER BY distance LIMIT %(n)s) nearest ORDER BY distance"
    ).format(cols=_RECALL_COLUMNS if text_only else _COLUMNS, t=sql.Identifier(table))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"v": vector, "u": user_id, "n": limit})
        return [_row(r) for r in await cur.fetchall()]


async def page(
    conn: AsyncConnection[Any], table: str, user_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[MemoryRow], int]:
    t = sql.Identifier(table)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT {cols} FROM {t} WHERE user_id = %s"
                " ORDER BY payload->>'created_at' DESC, id DESC LIMIT %s OFFSET %s"
            ).format(cols=_COLUMNS, t=t),
            (user_id, limit, offset),
        )
        rows = [_row(r) for r in await cur.fetchall()]
        await cur.execute(sql.SQL("SELECT count(*) AS n FROM {t} WHERE user_id = %s").format(t=t), (user_id,))
        total = await cur.fetchone()
    return rows, int(total["n"]) if total else 0


async def page_after(
    conn: AsyncConnection[Any],
    table: str,
    user_id: uuid.UUID,
    *,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[tuple[str, MemoryRow]]:
    """The user's memories oldest first after `after` (a keyset page), each with its sort key."""
    query = sql.SQL(
        "SELECT coalesce(payload->>'created_at', '') AS sort_key, {cols} FROM {t}"
        " WHERE user_id = %(u)s AND (%(k)s::text IS NULL"
        "   OR (coalesce(payload->>'created_at', ''), id) > (%(k)s::text, %(i)s::uuid))"
        " ORDER BY 1, id LIMIT %(n)s"
    ).format(cols=_COLUMNS, t=sql.Identifier(table))
    key, last_id = after if after is not None else (None, None)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"u": user_id, "k": key, "i": last_id, "n": limit})
        return [(r.pop("sort_key"), _row(r)) for r in await cur.fetchall()]


async def histories(
    conn: AsyncConnection[Any], user_id: uuid.UUID, memory_ids: list[uuid.UUID]
) -> list[HistoryRow]:
    """The history of each of these memories of the user, in order."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, memory_id, event, old_memory, new_memory, created_at, updated_at"
            " FROM memory_history WHERE user_id = %s AND memory_id = ANY(%s) ORDER BY memory_id, id",
            (user_id, memory_ids),
        )
        return [HistoryRow(**r) for r in await cur.fetchall()]


async def get(
    conn: AsyncConnection[Any], table: str, user_id: uuid.UUID, memory_id: uuid.UUID
) -> MemoryRow | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {cols} FROM {t} WHERE id = %s AND user_id = %s").format(
                cols=_COLUMNS, t=sql.Identifier(table)
            ),
            (memory_id, user_id),
        )
        r = await cur.fetchone()
    return _row(r) if r else None


async def history(conn: AsyncConnection[Any], user_id: uuid.UUID, memory_id: uuid.UUID) -> list[HistoryRow]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, memory_id, event, old_memory, new_memory, created_at, updated_at"
            " FROM memory_history WHERE memory_id = %s AND user_id = %s ORDER BY id",
            (memory_id, user_id),
        )
        return [HistoryRow(**r) for r in await cur.fetchall()]


async def delete_all(conn: AsyncConnection[Any], table: str, user_id: uuid.UUID) -> int:
    """Every memory of the user, with its history and mem0's recent messages, in one transaction."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            sql.SQL("DELETE FROM {t} WHERE user_id = %s").format(t=sql.Identifier(table)), (user_id,)
        )
        deleted = cur.rowcount
        await cur.execute("DELETE FROM memory_history WHERE user_id = %s", (user_id,))
        await cur.execute("DELETE FROM memory_message WHERE user_id = %s", (user_id,))
    return deleted


class EmbedderMismatchError(RuntimeError):
    pass


_INLINE_DIMS = 1536


async def ensure_table(conn: AsyncConnection[Any], table: str, *, dims: int, embedder: str) -> None:
    """Create mem0's vector table with our indexes, or check that the existing one fits the embedder.

    The table's comment records which embedder filled it: vectors from two different models cannot
    be compared, and a silent switch would return nonsense rather than fail.
    """
    t = sql.Identifier(table)
    signature = f"embedder={embedder};dims={dims}"
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # Several workers start at once: one creates, the others then see it.
        await cur.execute("SELECT pg_advisory_xact_lock(hashtext('agent-platform:memory-table'))")
        await cur.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {t} (
                id uuid PRIMARY KEY,
                vector vector({dims}) NOT NULL,
                payload jsonb NOT NULL,
                -- A foreign key, so that deleting a user deletes their memories, and a late
                -- extraction cannot store one for a user who is gone.
                user_id uuid GENERATED ALWAYS AS ((payload->>'user_id')::uuid) STORED NOT NULL
                    REFERENCES "user"(id) ON DELETE CASCADE
            )"""
            ).format(t=t, dims=sql.Literal(dims))
        )
        await cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (user_id, (payload->>'created_at'))").format(
                i=sql.Identifier(f"{table}_user_created_idx"), t=t
            )
        )
        # mem0's own queries filter on the JSON field.
        await cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} ((payload->>'user_id'))").format(
                i=sql.Identifier(f"{table}_payload_user_idx"), t=t
            )
        )
        await cur.execute(
            "SELECT obj_description(attrelid, 'pg_class') AS signature, atttypmod AS dims,"
            " attstorage = 'p' AS plain FROM pg_attribute"
            " WHERE attrelid = to_regclass(%(t)s) AND attname = 'vector'",
            {"t": table},
        )
        state = (await cur.fetchone()) or {}
        found, found_dims = state.get("signature"), state.get("dims")
        if found is None and found_dims == dims:
            await cur.execute(sql.SQL("COMMENT ON TABLE {t} IS {c}").format(t=t, c=sql.Literal(signature)))
        elif found != signature:
            held = found or f"a {found_dims}-dimension embedder"
            raise EmbedderMismatchError(
                f"The memory table {table!r} holds vectors from {held},"
                f" but the configured embedder is {embedder} ({dims} dimensions). Vectors from different"
                " embedders cannot be searched together. Set MEMORY_EMBEDDER (and MEMORY_EMBEDDING_MODEL,"
                " MEMORY_EMBEDDING_DIMS) back to what filled the table, or point MEMORY_COLLECTION at a new"
                f" table name (the old memories stay in {table!r}; re-add them to move them)."
            )
        # Vectors stay in the row. pgvector stores them "external": a row over about 2 kB (512 floats
        # and the payload) moves its vector to the TOAST table, and an exact scan then fetches every
        # vector from there, several times slower. Rows already out of line stay so until rewritten.
        # Up to 1536 dimensions (6 kB) a row still fits its 8 kB page.
        if dims <= _INLINE_DIMS and not state.get("plain"):
            await cur.execute(sql.SQL("ALTER TABLE {t} ALTER COLUMN vector SET STORAGE PLAIN").format(t=t))
