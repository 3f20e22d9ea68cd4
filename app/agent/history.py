"""Keeping the checkpointed history bounded, so every turn costs the same however long the chat is.

The checkpointer re-serialises the whole `messages` channel at every step. The full transcript
lives in the `message` table; the graph state keeps only a recent window that starts on a user
message (never on an orphaned tool result).
"""

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, RemoveMessage


def _size(message: BaseMessage) -> int:
    content = message.content
    return len(content) if isinstance(content, str) else len(str(content))


def window_start(messages: Sequence[BaseMessage], *, max_messages: int, max_chars: int) -> int:
    """Index of the earliest user message from which the rest fits both budgets.

    The latest user message is always kept, even alone over budget: the model must see it.
    """
    human_indexes = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if not human_indexes:
        return 0
    chars_from = [0] * (len(messages) + 1)
    for i in range(len(messages) - 1, -1, -1):
        chars_from[i] = chars_from[i + 1] + _size(messages[i])
    for i in human_indexes:
        if len(messages) - i <= max_messages and chars_from[i] <= max_chars:
            return i
    return human_indexes[-1]


def removals(messages: Sequence[BaseMessage], *, max_messages: int, max_chars: int) -> list[RemoveMessage]:
    start = window_start(messages, max_messages=max_messages, max_chars=max_chars)
    return [RemoveMessage(id=m.id) for m in messages[:start] if m.id is not None]


def last_turn(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """The last turn's messages: its user message and everything after it (none without one)."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    return messages[starts[-1] :] if starts else []
