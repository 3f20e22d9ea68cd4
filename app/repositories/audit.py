"""SQL for the audit log."""

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import AuditLog


async def add(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    actor_email: str | None,
    action: str,
    target_id: uuid.UUID | None,
    target_email: str | None,
    detail: dict[str, Any],
) -> AuditLog:
    entry = AuditLog(
        actor_id=actor_id,
        actor_email=actor_email,
        action=action,
        target_id=target_id,
        target_email=target_email,
        detail=detail,
    )
    session.add(entry)
    await session.flush()
    return entry


async def search(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    target_id: uuid.UUID | None,
    action: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditLog], int]:
    conditions: list[ColumnElement[bool]] = []
    if actor_id is not None:
        conditions.append(col(AuditLog.actor_id) == actor_id)
    if target_id is not None:
        conditions.append(col(AuditLog.target_id) == target_id)
    if action is not None:
        conditions.append(col(AuditLog.action) == action)
    rows = await session.execute(
        select(AuditLog).where(*conditions).order_by(col(AuditLog.id).desc()).limit(limit).offset(offset)
    )
    total = await session.execute(select(func.count()).select_from(AuditLog).where(*conditions))
    return list(rows.scalars()), int(total.scalar_one())
