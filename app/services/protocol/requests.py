"""A run body, read: the turn's message from its input, the answer from its command, the checkpoint
it forks from. Anything we cannot do is a 422, never silently dropped."""

from dataclasses import dataclass
from typing import Any

from app.errors import ValidationFailedError
from app.services.chat.events import content_text
from app.services.chat.requests import Resume
from app.services.protocol import state

_INPUT = ("body", "input")
_COMMAND = ("body", "command")


@dataclass(frozen=True)
class RunRequest:
    """A run body, read: a new message (or none, to send a forked turn's again), where to fork from,
    or the answer to a tool call waiting for approval."""

    text: str | None = None
    message_id: str | None = None  # the client's id for its message
    checkpoint_id: str | None = None
    resume: Resume | None = None


def _is_empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == {"messages": []}


def _last_human(value: Any) -> tuple[str, str | None] | None:
    """The text and id of the last human message of an input: `{"messages": [...]}` with `role`
    (user) or `type` (human) messages, string or block content."""
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
        raise ValidationFailedError('input must be {"messages": [...]}', loc=_INPUT)
    for message in reversed(value["messages"]):
        if isinstance(message, str):
            return message, None
        if isinstance(message, dict) and (message.get("role") == "user" or message.get("type") == "human"):
            found_id = message.get("id")
            return _text(message.get("content")), str(found_id)[:200] if found_id else None
    return None


def _text(content: Any) -> str:
    """A message's text: a string, or the text blocks of a list (images and the like are left out)."""
    if isinstance(content, list):
        content = [
            block
            for block in content
            if isinstance(block, str)
            or (
                isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            )
        ]
    elif not isinstance(content, str):
        raise ValidationFailedError("a message's content must be text or a list of blocks", loc=_INPUT)
    return content_text(content)


def _resume(value: Any) -> Resume:
    """Our answer to a waiting tool call: {decision, args?, reason?}, `true`/"approve", LangChain's
    {"decisions": [{type, ...}]}, or any of them under the interrupt's id."""
    if value is True or (isinstance(value, str) and value.lower() in ("approve", "yes")):
        return Resume("approve")
    if not isinstance(value, dict):
        raise ValidationFailedError(
            'resume must be {"decision": "approve" | "edit" | "reject"}', loc=_COMMAND
        )
    if "decision" not in value and "decisions" not in value and len(value) == 1:
        return _resume(next(iter(value.values())))  # {interrupt_id: answer}
    if isinstance(value.get("decisions"), list) and value["decisions"]:
        first: dict[str, Any] = value["decisions"][0] if isinstance(value["decisions"][0], dict) else {}
        action = first.get("edited_action")
        edited: dict[str, Any] = action if isinstance(action, dict) else {}
        value = {"decision": first.get("type"), "args": edited.get("args"), "reason": first.get("message")}
    decision, args, reason = value.get("decision"), value.get("args"), value.get("reason")
    if decision not in ("approve", "edit", "reject"):
        raise ValidationFailedError("resume.decision must be approve, edit or reject", loc=_COMMAND)
    if args is not None and not isinstance(args, dict):
        raise ValidationFailedError("resume.args must be an object", loc=_COMMAND)
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailedError("resume.reason must be text", loc=_COMMAND)
    return Resume(decision, args=args, reason=reason)


def parse_request(
    *, input: Any, command: dict[str, Any] | None, checkpoint: Any, checkpoint_id: str | None
) -> RunRequest:
    if command:
        unsupported = sorted(k for k, v in command.items() if k != "resume" and v is not None)
        if unsupported:
            raise ValidationFailedError(f"command.{unsupported[0]} is not supported", loc=_COMMAND)
        if "resume" not in command:
            raise ValidationFailedError("command needs resume", loc=_COMMAND)
        if not _is_empty(input):
            raise ValidationFailedError("send input or command, not both", loc=_INPUT)
        return RunRequest(resume=_resume(command["resume"]))
    fork = state.checkpoint_of(checkpoint) or checkpoint_id
    if _is_empty(input):
        if fork is None:
            raise ValidationFailedError("input needs a human message", loc=_INPUT)
        return RunRequest(checkpoint_id=fork)  # the forked turn's message again (regenerate)
    found = _last_human(input)
    if found is None:
        raise ValidationFailedError("input needs a human message", loc=_INPUT)
    return RunRequest(text=found[0], message_id=found[1], checkpoint_id=fork)
