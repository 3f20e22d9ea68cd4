"""Graph state and the per-run context handed to nodes and tools."""

import uuid
from dataclasses import dataclass
from typing import Annotated, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    # What the recall node found for this turn's message; replaced every turn, bounded by settings.
    memories: NotRequired[list[str]]


@dataclass(frozen=True)
class Context:
    """Who is asking. Set by the service from the authenticated request, never by the model."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    db: async_sessionmaker[AsyncSession]
    memory_enabled: bool = True  # the session's switch: off, nothing is recalled or searched
