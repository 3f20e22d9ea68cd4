"""Liveness and readiness."""

from fastapi import APIRouter

from app.api.deps import RuntimeDep
from app.services.health import check_ready

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(rt: RuntimeDep) -> dict[str, str]:
    revision = await check_ready(rt.db.engine, rt.db.schema_head)
    return {"status": "ready", "database": "ok", "schema": str(revision)}
