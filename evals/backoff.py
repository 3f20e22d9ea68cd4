"""How long to wait before a retry: the server's Retry-After when it sends one, else jittered doubling."""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_WAIT = 60.0


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def delay(base: float, attempt: int, server_says: float | None = None) -> float:
    if server_says is not None:
        return min(server_says, MAX_WAIT)
    # Jitter keeps concurrent callers that failed together from retrying together; it is no secret.
    return min(base * 2.0**attempt * random.uniform(0.5, 1.5), MAX_WAIT)  # noqa: S311
