"""GET /info: what LangGraph's clients probe before anything else (public, like a health check)."""

from fastapi import APIRouter

from app.api.deps import SettingsDep
from app.api.limits import rate_limit
from app.schemas.protocol import InfoRead

router = APIRouter()


@router.get("/info", response_model=InfoRead, dependencies=[rate_limit("api")])
async def info(settings: SettingsDep) -> InfoRead:
    return InfoRead(version=settings.release, flags={"assistants": True, "crons": False, "langsmith": False})
