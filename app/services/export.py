"""A user's data as one zip, streamed: their account, every session with its transcript, every memory.

Rows are read in keyset pages of bounded size, each page in a short transaction of its own, and
written to the archive as they arrive: memory stays flat however much a user has, and no connection
is held while a slow client downloads. The export is therefore not one snapshot: a turn completing
meanwhile may or may not be in it.

To add a file (feedback, say): write a part, an async generator of `Entry`s, and list it in `PARTS`
with the lines README.txt gives it.
"""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.models import ChatSession, Message, User
from app.repositories import feedback as feedback_repo
from app.repositories import messages as messages_repo
from app.repositories import sessions as sessions_repo
from app.runtime import Runtime
from app.services.zipstream import Entry, zip_stream

SESSIONS_PAGE = 50
MESSAGES_PAGE = 200
MEMORIES_PAGE = 100


@dataclass(frozen=True)
class Export:
    rt: Runtime
    user: User


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, indent=indent)


async def _once(data: str) -> AsyncIterator[bytes]:
    yield data.encode()


async def _json_array(
    pages: AsyncIterator[list[Any]], *, head: str = "[", tail: str = "]\n"
) -> AsyncIterator[bytes]:
    """A JSON array written page by page: `head`, the items, `tail`."""
    first = True
    yield head.encode()
    async for page in pages:
        if page:
            items = ",\n".join(_json(item) for item in page)
            yield (("\n" if first else ",\n") + items).encode()
            first = False
    yield (("" if first else "\n") + tail).encode()


# --- account.json


def _account(user: User) -> dict[str, Any]:
    """The user's own row, never the password hash. A quota of null is the server's default."""
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": user.created_at,
        "quotas": {"messages_per_day": user.daily_message_quota, "tokens_per_day": user.daily_token_quota},
    }


async def account_part(export: Export) -> AsyncIterator[Entry]:
    yield Entry("account.json", _once(_json(_account(export.user)) + "\n"))


# --- sessions/<id>.json and sessions/<id>.md


async def _sessions(export: Export) -> AsyncIterator[tuple[ChatSession, uuid.UUID]]:
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with export.rt.db.sessions() as db:
            page = await sessions_repo.page_with_threads(db, export.user.id, after=after, limit=SESSIONS_PAGE)
        for row in page:
            yield row
        if len(page) < SESSIONS_PAGE:
            return
        after = (page[-1][0].created_at, page[-1][0].id)


async def _messages(export: Export, thread_id: uuid.UUID) -> AsyncIterator[list[Message]]:
    after = 0
    while True:
        async with export.rt.db.sessions() as db:
            page = await messages_repo.page_after(db, thread_id, after_id=after, limit=MESSAGES_PAGE)
        yield page
        if len(page) < MESSAGES_PAGE:
            return
        after = page[-1].id or after


def _message(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "tool_calls": m.tool_calls,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        "created_at": m.created_at,
    }


async def _session_json(export: Export, chat: ChatSession, thread_id: uuid.UUID) -> AsyncIterator[bytes]:
    fields = _json(
        {"id": chat.id, "name": chat.name, "created_at": chat.created_at, "updated_at": chat.updated_at},
        indent=None,
    )
    pages = (list(map(_message, page)) async for page in _messages(export, thread_id))
    async for chunk in _json_array(pages, head=fields[:-1] + ', "messages": [', tail="]}\n"):
        yield chunk


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _markdown(m: Message) -> str:
    who = "You" if m.role == "user" else "Assistant"
    lines = [f"### {who} · {_when(m.created_at)}", "", m.content, ""]
    for call in m.tool_calls or []:
        args = json.dumps(call.get("args"), ensure_ascii=False)
        outcome = "error" if call.get("is_error") else "result"
        lines += [f"- Tool `{call.get('name')}` with `{args}`, {outcome}: {call.get('result')}"]
    if m.tool_calls:
        lines.append("")
    if m.input_tokens is not None or m.output_tokens is not None:
        lines += [f"_Tokens: {m.input_tokens or 0} in, {m.output_tokens or 0} out._", ""]
    return "\n".join(lines) + "\n"


async def _session_markdown(export: Export, chat: ChatSession, thread_id: uuid.UUID) -> AsyncIterator[bytes]:
    yield f"# {chat.name}\n\nSession `{chat.id}`, started {_when(chat.created_at)}.\n\n".encode()
    async for page in _messages(export, thread_id):
        if page:
            yield "".join(map(_markdown, page)).encode()


async def sessions_part(export: Export) -> AsyncIterator[Entry]:
    async for chat, thread_id in _sessions(export):
        yield Entry(f"sessions/{chat.id}.json", _session_json(export, chat, thread_id))
        yield Entry(f"sessions/{chat.id}.md", _session_markdown(export, chat, thread_id))


# --- memories.json


async def _memory_pages(export: Export) -> AsyncIterator[list[dict[str, Any]]]:
    store = export.rt.memory
    if store is None:
        return
    after: tuple[str, uuid.UUID] | None = None
    while True:
        page, after = await store.page_with_history(export.user.id, after=after, limit=MEMORIES_PAGE)
        yield [
            {
                "id": row.id,
                "text": row.text,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "session_id": row.session_id,
                "history": [
                    {
                        "event": h.event,
                        "old_memory": h.old_memory,
                        "new_memory": h.new_memory,
                        "created_at": h.created_at,
                        "updated_at": h.updated_at,
                    }
                    for h in history
                ],
            }
            for row, history in page
        ]
        if after is None:
            return


async def memories_part(export: Export) -> AsyncIterator[Entry]:
    yield Entry("memories.json", _json_array(_memory_pages(export)))


# --- feedback.json


async def _feedback_pages(export: Export) -> AsyncIterator[list[dict[str, object]]]:
    after = 0
    while True:
        async with export.rt.db.sessions() as db:
            page = await feedback_repo.page_for_user(db, export.user.id, after=after, limit=MESSAGES_PAGE)
        yield page
        if len(page) < MESSAGES_PAGE:
            return
        after = int(str(page[-1]["message_id"]))


async def feedback_part(export: Export) -> AsyncIterator[Entry]:
    yield Entry("feedback.json", _json_array(_feedback_pages(export)))


# --- the archive

Part = Callable[[Export], AsyncIterator[Entry]]

# Each part with what README.txt says of its files.
PARTS: list[tuple[Part, str]] = [
    (
        account_part,
        """account.json
  Your account: id, email, role, whether it is active, when it was created, and your
  daily quotas (null: the server's default). Your password is never exported.""",
    ),
    (
        sessions_part,
        """sessions/<session id>.json
  One chat session: its name and dates, and every message in order with its role
  (user or assistant), text, tool calls (name, arguments, result) and token counts.
sessions/<session id>.md
  The same conversation as a readable transcript.""",
    ),
    (
        memories_part,
        """memories.json
  What the assistant remembers about you: each memory with its dates, the session it
  came from, and its history (added, updated, deleted). Empty when memory is turned off.""",
    ),
    (
        feedback_part,
        """feedback.json
  Your ratings of the assistant's answers: the message and session rated, up or down,
  your comment, and when.""",
    ),
]


def _readme(export: Export, when: datetime) -> str:
    files = "\n\n".join(text for _, text in PARTS)
    return (
        f"Your data, exported {_when(when)} for {export.user.email}.\n\n{files}\n\n"
        "Times are in UTC (ISO 8601 in the JSON files). Text is UTF-8.\n"
    )


async def _entries(export: Export, when: datetime) -> AsyncIterator[Entry]:
    yield Entry("README.txt", _once(_readme(export, when)))
    for part, _ in PARTS:
        async for entry in part(export):
            yield entry


def filename(when: datetime) -> str:
    return f"export-{when.astimezone(UTC):%Y-%m-%d}.zip"


def export_zip(rt: Runtime, user: User, *, when: datetime) -> AsyncIterator[bytes]:
    """The archive's bytes, produced as the client reads them."""
    export = Export(rt, user)
    return zip_stream(_entries(export, when), when=when)
