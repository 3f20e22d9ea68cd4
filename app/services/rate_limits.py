"""Rate limits that hold across workers: counters in PostgreSQL, a sliding window per client.

The estimate weighs the previous fixed window by how much of it still overlaps the sliding one,
which avoids the double burst a plain fixed window allows at its edge.
"""

import math

from psycopg_pool import AsyncConnectionPool

from app.config import Rate
from app.errors import TooManyRequestsError
from app.observability import metrics
from app.repositories import rate_limits as limits_repo
from app.repositories.rate_limits import Count


def estimate(count: Count, period: int) -> float:
    overlap = max(0.0, 1.0 - count.elapsed / period)
    return count.previous_hits * overlap + count.hits


def retry_after(count: Count, rate: Rate) -> float:
    """Seconds until this client's next request would be allowed (the refused one not counted)."""
    period, elapsed = rate.seconds, count.elapsed
    kept = count.hits - 1
    room = rate.requests - 1 - kept  # requests this window could still take were the previous one empty
    if room >= 0 and count.previous_hits > 0:
        # Within this window, once enough of the previous one has slid out.
        return max(0.0, (1.0 - room / count.previous_hits) * period - elapsed)
    # This window alone is full: the next one, once enough of this one has slid out in its turn.
    return period - elapsed + max(0.0, 1.0 - (rate.requests - 1) / max(kept, 1)) * period


async def hit(pool: AsyncConnectionPool, *, name: str, subject: str, rate: Rate) -> None:
    """Count one request of `subject` against the limit `name`; TooManyRequestsError past it."""
    key = f"{name}:{subject}"
    async with pool.connection() as conn:
        count = await limits_repo.hit(conn, key=key, period=rate.seconds)
        if estimate(count, rate.seconds) <= rate.requests:
            return
        await limits_repo.uncount(conn, key=key)
    metrics.count_rate_limited(name)
    wait = retry_after(count, rate)
    raise TooManyRequestsError(
        f"Rate limit of {rate.requests} requests per {rate.seconds} s exceeded ({name}); "
        f"retry in {max(1, math.ceil(wait))} s.",
        retry_after=wait,
    )
