"""What a client asks of a turn, checked before anything is leased."""

from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.errors import ValidationFailedError

_MESSAGE = ("body", "message")


@dataclass(frozen=True)
class TurnRequest:
    """A message, optionally replacing a completed turn and everything after it (a fork).

    `replace_last_turn` forks from the last turn; `replaces` is that turn's user message id as the
    client knows it (TurnChangedError when another client added a turn since). `from_turn` forks from
    any turn, named by its user message id. Without `text`, the replaced turn's message is sent again.
    """

    text: str | None
    replace_last_turn: bool = False
    replaces: int | None = None
    from_turn: int | None = None

    @property
    def forks(self) -> bool:
        return self.replace_last_turn or self.from_turn is not None

    def validate(self, settings: Settings) -> None:
        if self.replaces is not None and not self.replace_last_turn:
            raise ValidationFailedError(
                "replaces_message_id goes with replace_last_turn", loc=("body", "replaces_message_id")
            )
        if self.replace_last_turn and self.from_turn is not None:
            raise ValidationFailedError(
                "from_turn and replace_last_turn are two ways to say the same: send one",
                loc=("body", "from_turn"),
            )
        text = self.text
        if text is None:
            if not self.forks:
                raise ValidationFailedError(
                    "message is required unless replace_last_turn is true or from_turn is given", loc=_MESSAGE
                )
            return
        if not text.strip():
            raise ValidationFailedError("message must not be empty", loc=_MESSAGE)
        if len(text) > settings.max_message_chars:
            raise ValidationFailedError(
                f"message is longer than {settings.max_message_chars} characters", loc=_MESSAGE
            )


@dataclass(frozen=True)
class Resume:
    """A person's answer to a tool call waiting for approval."""

    decision: str  # approve | edit | reject
    args: dict[str, Any] | None = None  # edit: the arguments to run the tool with instead
    reason: str | None = None  # reject: told to the model

    def as_value(self) -> dict[str, Any]:
        """What `interrupt()` returns in the approval node (app/agent/approval.py)."""
        return {"decision": self.decision, "args": self.args, "reason": self.reason}
