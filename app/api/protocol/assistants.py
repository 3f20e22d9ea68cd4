"""Assistants: the one agent graph, read-only."""

from fastapi import APIRouter

from app.api.deps import ProtocolUser
from app.api.limits import rate_limit
from app.schemas.protocol import AssistantRead, AssistantSearch
from app.services.protocol import assistants

router = APIRouter(prefix="/assistants")


@router.post("/search", response_model=list[AssistantRead], dependencies=[rate_limit("api")])
async def search_assistants(body: AssistantSearch, user: ProtocolUser) -> list[AssistantRead]:
    found = assistants.search(
        graph_id=body.graph_id, name=body.name, metadata=body.metadata, limit=body.limit, offset=body.offset
    )
    return [AssistantRead.model_validate(a) for a in found]


@router.get("/{assistant_id}", response_model=AssistantRead, dependencies=[rate_limit("api")])
async def get_assistant(assistant_id: str, user: ProtocolUser) -> AssistantRead:
    """By its id or its graph's name (`agent`)."""
    assistants.resolve(assistant_id)
    return AssistantRead.model_validate(assistants.assistant())
