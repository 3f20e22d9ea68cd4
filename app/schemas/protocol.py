"""Agent Protocol schemas: the bodies LangGraph's clients send and the objects they read.

Bodies ignore fields they do not know (newer clients add some); see docs/agent-protocol.md.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.schemas.common import clean_text

Multitask = Literal["reject", "enqueue", "interrupt", "rollback"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
Limit = Field(default=10, ge=1, le=1000)
Offset = Field(default=0, ge=0, le=1_000_000)


def _clean_json(value: Any) -> Any:
    """Every key and string of a JSON value as `clean_text` wants it (PostgreSQL keeps metadata)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


Json = Annotated[Any, AfterValidator(_clean_json)]
Metadata = Annotated[dict[str, Any], AfterValidator(_clean_json)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Limit
    offset: int = Offset


class AssistantRead(BaseModel):
    assistant_id: uuid.UUID
    graph_id: str
    name: str
    description: str | None
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class ThreadCreate(_Body):
    thread_id: uuid.UUID | None = None
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    supersteps: list[Any] | None = None  # state writes: not supported (422 unless empty)


class ThreadSearch(_Body):
    metadata: Metadata | None = None
    ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    status: ThreadStatus | None = None
    values: dict[str, Any] | None = None  # filtering by values: not supported (422 unless empty)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    limit: int = Limit
    offset: int = Offset


class ThreadRead(BaseModel):
    thread_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    metadata: dict[str, Any]
    status: ThreadStatus
    config: dict[str, Any]
    values: dict[str, Any] | None
    interrupts: dict[str, list[dict[str, Any]]]


class CheckpointRead(BaseModel):
    thread_id: uuid.UUID
    checkpoint_ns: str
    checkpoint_id: str
    checkpoint_map: dict[str, Any] | None


class ThreadStateRead(BaseModel):
    values: dict[str, Any]
    next: list[str]
    tasks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    created_at: datetime | None
    checkpoint: CheckpointRead | None
    parent_checkpoint: CheckpointRead | None
    interrupts: list[dict[str, Any]]


class HistoryQuery(_Body):
    limit: int = Limit
    # A checkpoint id, a Checkpoint, or a config ({"configurable": {"checkpoint_id": ...}}).
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None  # its checkpoint_ns: "" only (no subgraphs)


class RunCreate(_Body):
    assistant_id: str = Field(max_length=200)
    # {"messages": [...]}: the last human message is the turn's message.
    input: Json = None
    # {"resume": {"decision": "approve" | "edit" | "reject", "args"?, "reason"?}} (or true, "approve").
    command: Metadata | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None  # every run's events are kept: always resumable
    on_disconnect: Literal["cancel", "continue"] | None = None
    multitask_strategy: Multitask | None = None
    # Fork: a checkpoint of the thread's history (GET .../history) to run from.
    checkpoint: Metadata | None = None
    checkpoint_id: str | None = Field(default=None, max_length=200)
    if_not_exists: Literal["create", "reject"] | None = None
    interrupt_before: Any = None  # not supported (422 unless empty)
    interrupt_after: Any = None  # not supported (422 unless empty)
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None  # ignored
    context: dict[str, Any] | None = None  # ignored


class RunRead(BaseModel):
    run_id: uuid.UUID
    thread_id: uuid.UUID
    assistant_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    # interrupted: waiting for a person to approve a tool call, or stopped (then with cancel_reason).
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: Multitask
    run_kwargs: dict[str, Any] = Field(serialization_alias="kwargs")  # not kept: always {}
    cancel_reason: str | None


class InfoRead(BaseModel):
    version: str
    flags: dict[str, bool]
