"""A thread's state and history, built from the transcript and the thread's checkpoint pointer.

Each thread keeps only its last two LangGraph checkpoints (app/repositories/turns.py), and the graph's
state holds a bounded window of messages. So a state here is the transcript up to the end of a
completed turn: the last one under its real checkpoint id, an earlier one under a synthetic id that
names the turn after it, which a run forks before (`from_turn`). A run waiting for approval adds a
state on top, under the checkpoint it waits at, with its pending interrupt.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.errors import NotFoundError
from app.repositories import protocol as repo
from app.repositories.protocol import ThreadRow, TranscriptRow, WaitingRun
from app.runtime import Runtime
from app.services.protocol import messages

# The most transcript messages a state's values hold (the newest ones).
MAX_STATE_MESSAGES = 200
# A synthetic checkpoint id: this prefix, then the user message id of the turn it comes before in 16
# hex digits (as a UUID's last two groups). Real ids are UUIDv6s and never start so.
_SYNTHETIC = "00000000-0000-0000-"
HEAD = 0  # the synthetic id of a last turn that has no checkpoint: the thread's state as it is
MAX_MESSAGE_ID = 2**63 - 1  # a bigint


def synthetic_id(before_message_id: int) -> str:
    digits = f"{before_message_id:016x}"
    return f"{_SYNTHETIC}{digits[:4]}-{digits[4:]}"


def parse_synthetic(checkpoint_id: str) -> int | None:
    """The user message id a synthetic checkpoint id names, HEAD for the head; None for a real id."""
    if not checkpoint_id.startswith(_SYNTHETIC) or len(checkpoint_id) != 36:
        return None
    try:
        found = int(checkpoint_id[len(_SYNTHETIC) :].replace("-", ""), 16)
    except ValueError:
        return None
    return found if found <= MAX_MESSAGE_ID else None


@dataclass(frozen=True)
class Checkpoint:
    thread_id: str
    checkpoint_id: str
    checkpoint_ns: str = ""
    checkpoint_map: dict[str, Any] | None = None


@dataclass
class ThreadState:
    values: dict[str, Any]
    next: list[str] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None
    checkpoint: Checkpoint | None = None
    parent_checkpoint: Checkpoint | None = None
    interrupts: list[dict[str, Any]] = field(default_factory=list)


def empty_state() -> ThreadState:
    """A thread with no turn yet: no checkpoint (useStream reads that as "no history")."""
    return ThreadState(values={})


@dataclass
class _Turn:
    user_message_id: int
    created_at: datetime
    messages: list[dict[str, Any]] = field(default_factory=list)


def _turns(rows: list[TranscriptRow]) -> list[_Turn]:
    """The transcript as turns: a user message and what follows it (a window's leading replies dropped)."""
    turns: list[_Turn] = []
    for row in rows:
        if row.role == "user":
            turns.append(_Turn(row.id, row.created_at))
        elif not turns:
            continue
        turns[-1].messages.extend(messages.from_transcript(row))
        turns[-1].created_at = row.created_at
    return turns


def waiting_messages(waiting: WaitingRun) -> list[dict[str, Any]]:
    """The turn a run waits in: its message and the model's tool calls waiting for approval."""
    calls = (waiting.interrupt or {}).get("tool_calls") or []
    return [
        messages.human(waiting.message or "", f"{waiting.id}-human"),
        messages.ai("", f"{waiting.id}-calls", calls),
    ]


def pending_interrupt(waiting: WaitingRun) -> dict[str, Any]:
    expires = waiting.expires_at.isoformat() if waiting.expires_at else None
    return messages.interrupt(waiting.id, (waiting.interrupt or {}).get("tool_calls") or [], expires)


def entries(
    thread: ThreadRow, rows: list[TranscriptRow], *, complete: bool, next_turn: int | None, waiting: bool
) -> list[ThreadState]:
    """The thread's states over this window of its transcript, newest first. `complete`: the window
    starts at the transcript's start; `next_turn`: the user message after the window (None: the
    window ends at the thread's end); `waiting`: add the state of the run waiting for approval."""
    tid = str(thread.id)
    turns = _turns(rows)
    states: list[ThreadState] = []
    if complete and turns:
        states.append(
            ThreadState(
                values={"messages": []},
                metadata={"source": "input", "step": -1, "parents": {}},
                created_at=thread.created_at,
                checkpoint=Checkpoint(tid, synthetic_id(turns[0].user_message_id)),
            )
        )
    so_far: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        so_far = [*so_far, *turn.messages]
        if i + 1 < len(turns):
            checkpoint_id = synthetic_id(turns[i + 1].user_message_id)
        elif next_turn is not None:
            checkpoint_id = synthetic_id(next_turn)
        else:
            checkpoint_id = thread.checkpoint_id or synthetic_id(HEAD)
        states.append(
            ThreadState(
                values={"messages": so_far},
                metadata={"source": "loop", "step": i, "parents": {}, "turn_id": turn.user_message_id},
                created_at=turn.created_at,
                checkpoint=Checkpoint(tid, checkpoint_id),
                parent_checkpoint=Checkpoint(tid, synthetic_id(turn.user_message_id)),
            )
        )
    if waiting and thread.waiting is not None:
        run = thread.waiting
        pending = pending_interrupt(run)
        states.append(
            ThreadState(
                values={"messages": [*so_far, *waiting_messages(run)]},
                next=["approval"],
                tasks=[messages.approval_task(run.id, pending)],
                metadata={"source": "loop", "step": len(turns), "parents": {}, "run_id": str(run.id)},
                created_at=run.created_at,
                checkpoint=Checkpoint(tid, run.checkpoint_id or synthetic_id(HEAD)),
                parent_checkpoint=states[-1].checkpoint if states else None,
                interrupts=[pending],
            )
        )
    states.reverse()
    return states


async def thread_row(rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID) -> ThreadRow:
    async with rt.db.pool.connection() as conn:
        found = await repo.get_thread(conn, session_id=session_id, user_id=user_id)
    if found is None:
        raise NotFoundError(f"Thread {session_id} not found")
    return found


async def _window(rt: Runtime, thread: ThreadRow, *, before: int | None) -> tuple[list[TranscriptRow], bool]:
    async with rt.db.pool.connection() as conn:
        rows = await repo.transcript(
            conn, thread_row_id=thread.thread_row_id, before=before, limit=MAX_STATE_MESSAGES
        )
    return rows, len(rows) < MAX_STATE_MESSAGES


async def head(rt: Runtime, thread: ThreadRow, *, waiting: bool = True) -> ThreadState:
    """The thread's current state: a waiting run's if one waits (unless not `waiting`), else the
    state after its last turn."""
    rows, complete = await _window(rt, thread, before=None)
    states = entries(thread, rows, complete=complete, next_turn=None, waiting=waiting)
    return states[0] if states else empty_state()


async def messages_through(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, message_id: int | None
) -> list[dict[str, Any]]:
    """The state's messages right after the turn whose reply is `message_id` (a run's end, however
    many turns came since); None: the thread's now."""
    thread = await thread_row(rt, user_id=user_id, session_id=session_id)
    if message_id is None:
        current = await head(rt, thread)
    else:
        rows, complete = await _window(rt, thread, before=message_id + 1)
        states = entries(thread, rows, complete=complete, next_turn=None, waiting=False)
        current = states[0] if states else empty_state()
    found: list[dict[str, Any]] = current.values.get("messages") or []
    return found


async def before_turn(rt: Runtime, thread: ThreadRow, message_id: int) -> ThreadState:
    """The state before the turn of user message `message_id` (a synthetic checkpoint's)."""
    async with rt.db.pool.connection() as conn:
        known = await repo.is_user_message(conn, thread_row_id=thread.thread_row_id, message_id=message_id)
    if not known:
        raise NotFoundError("Checkpoint not found")
    rows, complete = await _window(rt, thread, before=message_id)
    states = entries(thread, rows, complete=complete, next_turn=message_id, waiting=False)
    if states:
        return states[0]
    tid = str(thread.id)
    return ThreadState(
        values={"messages": []},
        metadata={"source": "input", "step": -1, "parents": {}},
        created_at=thread.created_at,
        checkpoint=Checkpoint(tid, synthetic_id(message_id)),
    )


async def state_at(
    rt: Runtime, *, user_id: uuid.UUID, session_id: uuid.UUID, checkpoint_id: str | None
) -> ThreadState:
    """The thread's state now, or at one of the checkpoint ids its history lists."""
    thread = await thread_row(rt, user_id=user_id, session_id=session_id)
    current = await head(rt, thread)
    if checkpoint_id is None or (current.checkpoint and current.checkpoint.checkpoint_id == checkpoint_id):
        return current
    before = parse_synthetic(checkpoint_id)
    if before is None or before == HEAD:
        if before == HEAD or checkpoint_id == thread.checkpoint_id:
            completed = await head(rt, thread, waiting=False)
            if completed.checkpoint is not None:
                return completed
        raise NotFoundError("Checkpoint not found")
    return await before_turn(rt, thread, before)


def checkpoint_of(value: Any) -> str | None:
    """A checkpoint id as clients send it: a string, a Checkpoint, or a config's `configurable`."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        configurable = value.get("configurable")
        inner: dict[str, Any] = configurable if isinstance(configurable, dict) else value
        found = inner.get("checkpoint_id")
        return str(found) if found else None
    return None


async def history(
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    limit: int,
    before: str | None,
    metadata: dict[str, Any] | None,
) -> list[ThreadState]:
    """The thread's states, newest first: the waiting run's if any, then one per completed turn, then
    the state before the first turn; `before`: only those older than that checkpoint."""
    thread = await thread_row(rt, user_id=user_id, session_id=session_id)
    bound: int | None = None
    drop_first = False
    waiting = before is None
    if before is not None:
        parsed = parse_synthetic(before)
        if thread.waiting is not None and before == thread.waiting.checkpoint_id:
            pass  # everything but the waiting state
        elif parsed is not None and parsed != HEAD:
            bound, drop_first = parsed, True
        elif parsed == HEAD or before == thread.checkpoint_id:
            rows, _ = await _window(rt, thread, before=None)
            users = [r.id for r in rows if r.role == "user"]
            if not users:
                return []
            bound = users[-1]
        else:
            raise NotFoundError("Checkpoint not found")
    rows, complete = await _window(rt, thread, before=bound)
    states = entries(thread, rows, complete=complete, next_turn=bound, waiting=waiting)
    if drop_first:
        states = states[1:]
    if metadata:
        states = [s for s in states if all((s.metadata or {}).get(k) == v for k, v in metadata.items())]
    return states[:limit]
