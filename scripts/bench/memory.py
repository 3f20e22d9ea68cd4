"""Memory phases: retrieval at scale, in this process on the app's database; clearing the job queue."""

import time
import uuid
from pathlib import Path
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from app.agent.memory import open_memory
from app.agent.openai_client import build_client
from app.config import load_settings
from app.repositories import memories as memories_repo
from scripts.bench.stats import summary

QUERIES = [
    "what is my favourite colour?",
    "where do I live these days?",
    "remind me what my dog is called",
    "recommend a dinner, I'm vegetarian",
    "which languages do I speak?",
    "when is my daughter's birthday?",
    "what car do I drive?",
    "what do I do for work?",
]

_USERS = """
INSERT INTO "user" (id, email, hashed_password, is_active, created_at)
SELECT gen_random_uuid(), 'bench-memory-' || g || '-' || %(tag)s || '@example.com', 'x', true, now()
FROM generate_series(1, %(n)s) g RETURNING id
"""

# Random unit-free vectors: an exact scan costs the same whatever the values are.
_FILL = """
INSERT INTO memories (id, vector, payload)
SELECT gen_random_uuid(),
       (SELECT array_agg(random() - 0.5) FROM generate_series(1, %(dims)s) WHERE g > 0)::vector,
       jsonb_build_object('data', 'Bench memory ' || g || ': the user mentioned something worth keeping',
                          'user_id', %(u)s::text, 'created_at', now()::text, 'updated_at', now()::text)
FROM generate_series(1, %(n)s) g
"""

_DIMS = (
    "SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attname = 'vector'"
)


async def retrieval(data_dir: Path, *, per_user: int, users: int, rounds: int) -> dict[str, Any]:
    """Recall latency for one user holding `per_user` memories among `per_user * users` in the table."""
    dsn = f"postgresql://postgres:@/postgres?host={data_dir / 'pgdata'}"
    settings = load_settings(database_url=dsn, data_dir=data_dir)
    pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
        dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True, "row_factory": dict_row}
    )
    await pool.open()
    try:
        async with pool.connection() as conn:
            ids = [
                r["id"]
                for r in await (
                    await conn.execute(_USERS, {"tag": uuid.uuid4().hex[:8], "n": users})
                ).fetchall()
            ]
            # The embedder's width, as the app created the table (pgvector keeps it as the type modifier).
            dims = (await (await conn.execute(_DIMS)).fetchone() or {}).get("dims")
            t0 = time.perf_counter()
            for user_id in ids:
                await conn.execute(_FILL, {"u": str(user_id), "n": per_user, "dims": dims})
            await conn.execute("ANALYZE memories")
            fill_s = time.perf_counter() - t0
            total = (await (await conn.execute("SELECT count(*) AS n FROM memories")).fetchone() or {}).get(
                "n"
            )
        client = build_client(settings)
        store = await open_memory(settings, dsn=dsn, pool=cast(AsyncConnectionPool, pool), client=client)
        try:
            target = ids[0]
            vectors = [await store.embed_query(q) for q in QUERIES]
            await store.recall(target, QUERIES[0])  # warm
            recall_ms, embed_ms, sql_ms = [], [], []
            for i in range(rounds):
                query = f"{QUERIES[i % len(QUERIES)]} ({i})"  # never a repeat: no cached vector
                t0 = time.perf_counter()
                await store.recall(target, query)
                recall_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                await store.embed_query(query + " ?")  # not the text recall just embedded (and cached)
                embed_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                async with pool.connection() as conn:
                    await memories_repo.nearest(conn, store.table, target, vectors[i % len(vectors)], 5)
                sql_ms.append((time.perf_counter() - t0) * 1000)
        finally:
            await store.close()
            await client.close()
        async with pool.connection() as conn:  # leave the app's database as it was
            await conn.execute('DELETE FROM "user" WHERE id = ANY(%s)', (ids,))
    finally:
        await pool.close()
    return {
        "per_user": per_user,
        "dims": dims,
        "table_rows": total,
        "fill_s": fill_s,
        "recall_ms": summary(recall_ms),
        "embed_ms": summary(embed_ms),
        "sql_ms": summary(sql_ms),
    }


async def purge_jobs(data_dir: Path) -> int:
    """Memory jobs a configuration left queued: gone, so that the next one does not run (and pay) them."""
    dsn = f"postgresql://postgres:@/postgres?host={data_dir / 'pgdata'}"
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        return (await conn.execute("DELETE FROM memory_job")).rowcount
