"""The one assistant: the agent graph, under the id LangGraph's own servers derive from its name."""

import uuid
from datetime import UTC, datetime
from typing import Any

from app.errors import NotFoundError

GRAPH_ID = "agent"
# The namespace LangGraph's servers derive an assistant's id from its graph's name with.
_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
ASSISTANT_ID = uuid.uuid5(_NAMESPACE, GRAPH_ID)
# On a thread a run was started on: the official server adds the same, and thread lists filter on it.
THREAD_METADATA = {"graph_id": GRAPH_ID, "assistant_id": str(ASSISTANT_ID)}
_SINCE = datetime(2026, 1, 1, tzinfo=UTC)  # constant: the assistant is part of the code, not a row


def assistant() -> dict[str, Any]:
    return {
        "assistant_id": str(ASSISTANT_ID),
        "graph_id": GRAPH_ID,
        "name": GRAPH_ID,
        "description": None,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": _SINCE,
        "updated_at": _SINCE,
    }


def resolve(assistant_id: str) -> uuid.UUID:
    """The assistant named by its id or its graph's name; NotFoundError for any other."""
    if assistant_id.strip().lower() not in (GRAPH_ID, str(ASSISTANT_ID)):
        raise NotFoundError(f"Assistant {assistant_id} not found")
    return ASSISTANT_ID


def search(
    *, graph_id: str | None, name: str | None, metadata: dict[str, Any] | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The assistant if it matches: graph id, name substring, metadata containment."""
    found = assistant()
    matches = (
        (graph_id is None or graph_id == GRAPH_ID)
        and (name is None or name.lower() in GRAPH_ID)
        and all(found["metadata"].get(k) == v for k, v in (metadata or {}).items())
    )
    return [found][offset : offset + limit] if matches else []
