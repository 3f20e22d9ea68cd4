"""Full-text search over a user's session titles and messages ('simple' configuration, GIN indexes).

'simple' only lower-cases words, with no stemming or stop words: users write in several languages
and a language's stemmer would mangle the others. The expressions below must stay exactly those of
the indexes (`ix_session_name_fts`, `ix_message_content_fts`) for the planner to use them.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Plain-text snippets: no markers around the matched words, a couple of short fragments at most.
_HEADLINE = (
    'StartSel="", StopSel="", MaxWords=24, MinWords=8, ShortWord=0, MaxFragments=2, FragmentDelimiter=" … "'
)

_HITS = """
WITH q AS (SELECT websearch_to_tsquery('simple', :q) AS query),
hits AS (
    SELECT s.id AS session_id, NULL::bigint AS message_id, NULL::text AS role, s.created_at, s.name AS body
    FROM session s, q
    WHERE s.user_id = :user_id AND to_tsvector('simple', s.name) @@ q.query
    UNION ALL
    (SELECT s.id, m.id, m.role, m.created_at, m.content
    FROM message m JOIN thread t ON t.id = m.thread_id JOIN session s ON s.id = t.session_id, q
    WHERE s.user_id = :user_id AND to_tsvector('simple', m.content) @@ q.query
    ORDER BY m.id DESC
    LIMIT 1000)
)
"""
# The newest 1,000 matching messages at most: a word found everywhere must not make one request
# count, sort and page through all of them. `total` then says 1,000 (plus matching titles).

_PAGE = (  # constants joined; the query itself is a bound parameter
    _HITS  # noqa: S608
    + """, page AS (
    SELECT hits.*, count(*) OVER () AS total FROM hits
    ORDER BY created_at DESC, message_id DESC NULLS LAST, session_id
    LIMIT :limit OFFSET :offset
)
SELECT page.session_id, s.name AS session_name, page.message_id, page.role, page.created_at, page.total,
       ts_headline('simple', page.body, q.query, :headline) AS snippet
FROM page JOIN session s ON s.id = page.session_id, q
ORDER BY page.created_at DESC, page.message_id DESC NULLS LAST, page.session_id
"""
)

_COUNT = _HITS + "SELECT count(*) FROM hits"  # noqa: S608 (constants)


@dataclass(frozen=True)
class Hit:
    session_id: uuid.UUID
    session_name: str
    message_id: int | None  # None: the session's title matched
    role: str | None
    snippet: str
    created_at: datetime


async def search(
    session: AsyncSession, *, user_id: uuid.UUID, query: str, limit: int, offset: int
) -> tuple[list[Hit], int]:
    """The page of hits, newest first, and how many there are in all."""
    params = {"q": query, "user_id": user_id}
    result = await session.execute(
        text(_PAGE), {**params, "limit": limit, "offset": offset, "headline": _HEADLINE}
    )
    rows = result.mappings().all()
    if rows:
        total = int(rows[0]["total"])
    else:  # a page past the end still reports the total
        total = int((await session.execute(text(_COUNT), params)).scalar_one()) if offset else 0
    hits = [
        Hit(
            session_id=r["session_id"],
            session_name=r["session_name"],
            message_id=r["message_id"],
            role=r["role"],
            snippet=r["snippet"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
    return hits, total
