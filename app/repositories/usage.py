"""SQL for each user's daily usage (written by turns._RECORD_TURN as turns complete)."""

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DailyUsage


async def on_day(session: AsyncSession, user_id: uuid.UUID, day: date) -> DailyUsage:
    found = await session.get(DailyUsage, (user_id, day))
    return found or DailyUsage(user_id=user_id, day=day, messages=0, tokens=0)
