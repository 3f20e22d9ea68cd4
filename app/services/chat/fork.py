"""Forks: where a run that replaces a completed turn (and every later one) starts."""

import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from app.agent import history
from app.errors import NoTurnToReplaceError, TurnChangedError, TurnNotFoundError
from app.repositories import turns as turns_repo
from app.runtime import Runtime
from app.services.chat import leases
from app.services.chat.requests import TurnRequest


def at(thread_id: uuid.UUID, checkpoint_id: str | None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": str(thread_id)}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def replaced_text(lease: leases.Lease) -> str:
    """A regenerate sends the replaced turn's message again (the request has made sure there is one)."""
    if lease.replacing is None:
        raise RuntimeError("a turn without a message must replace one")
    return lease.replacing.user_text


async def prepare_fork(rt: Runtime, lease: leases.Lease, request: TurnRequest, *, resuming: bool) -> None:
    """Read the turn to replace under the lease and decide where the run starts.

    The last turn starts from the checkpoint before it when that was kept, else from its own with its
    messages removed. An older turn's state is gone (each thread keeps two checkpoints): the run starts
    from the current state with every message replaced by the transcript before that turn."""
    async with rt.db.pool.connection() as conn:
        turn = await turns_repo.fork_point(
            conn, thread_id=lease.thread_id, checkpoint_id=lease.checkpoint_id, message_id=request.from_turn
        )
        if turn is None:
            raise TurnNotFoundError() if request.from_turn is not None else NoTurnToReplaceError()
        if request.replaces is not None and (not turn.is_last or request.replaces != turn.user_message_id):
            raise TurnChangedError()
        lease.replacing = turn
        if resuming or turn.parent_kept:
            return
        if turn.is_last:
            state = await rt.graph.aget_state(at(lease.thread_id, lease.checkpoint_id))
            last = history.last_turn(state.values.get("messages") or [])
            lease.lead_messages = tuple(RemoveMessage(id=m.id) for m in last if m.id is not None)
            return
        before = await turns_repo.transcript_before(
            conn,
            thread_id=lease.thread_id,
            message_id=turn.user_message_id,
            limit=rt.settings.history_max_messages,
        )
    rebuilt: list[BaseMessage] = [
        HumanMessage(text, id=str(uuid.uuid4())) if role == "user" else AIMessage(text, id=str(uuid.uuid4()))
        for role, text in before
    ]
    start = history.window_start(
        rebuilt, max_messages=rt.settings.history_max_messages, max_chars=rt.settings.history_max_chars
    )
    lease.lead_messages = (RemoveMessage(id=REMOVE_ALL_MESSAGES), *rebuilt[start:])
