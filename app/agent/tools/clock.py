"""Tool: the current date and time in a time zone."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import tool


@tool
def current_datetime(timezone: str = "UTC") -> str:
    """Return the current date and time in an IANA time zone such as "Europe/Paris" (default UTC)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Error: unknown time zone {timezone!r}; use an IANA name like 'America/New_York'."
    now = datetime.now(UTC).astimezone(zone)
    return now.strftime(f"%A %Y-%m-%d %H:%M:%S ({timezone}, UTC%z)")
