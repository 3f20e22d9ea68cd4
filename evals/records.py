"""One answered turn, from either mode: what was asked, answered, called and recalled, and at what cost."""

from dataclasses import asdict, dataclass, field
from typing import Any

from app.services.chat.events import ToolCallSummary
from evals.datasets import Expect


@dataclass
class TurnRecord:
    case_id: str  # the dataset case, or the Langfuse trace id
    index: int  # the turn's position in its case
    category: str
    session: str
    user: str
    reply: str = ""
    # Earlier messages of the same session, oldest first: {"role": "user" | "assistant", "content": ...}
    history: list[dict[str, str]] = field(default_factory=list)
    tool_calls: list[ToolCallSummary] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    tokens: int | None = None
    error: str | None = None
    expect: Expect | None = None
    trace_id: str | None = None
    timestamp: str | None = None  # the trace's, in trace mode

    @property
    def key(self) -> str:
        return f"{self.case_id}#{self.index}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expect"] = self.expect.model_dump(exclude_defaults=True) if self.expect else None
        return data
