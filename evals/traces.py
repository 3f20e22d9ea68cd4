"""Trace mode: recent chat turns from Langfuse as turn records, and their scores written back.

The service traces each turn as one `chat.turn` trace: the graph's input and final state as the
trace's input and output, a `recall` span whose output holds the recalled memories, a TOOL
observation per tool call and a GENERATION per model call.
"""

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evals.langfuse_api import LangfuseAPI
from evals.metrics import ALL
from evals.records import ToolCall, TurnRecord
from evals.scoring import Scores

PAGE_SIZE = 50
DETAIL_CONCURRENCY = 5
HISTORY_MESSAGES = 10
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class TraceFilters:
    since: datetime
    until: datetime | None = None
    limit: int = 50
    name: str | None = "chat.turn"
    tags: list[str] = field(default_factory=list)
    unscored: bool = False  # skip traces that already have a score named like one of the metrics

    def describe(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
            "name": self.name,
            "tags": self.tags,
            "unscored": self.unscored,
        }


async def fetch(api: LangfuseAPI, filters: TraceFilters, metric_names: set[str]) -> list[dict[str, Any]]:
    """Full traces (observations and scores included), newest first, at most `limit`."""
    bound = asyncio.Semaphore(DETAIL_CONCURRENCY)

    async def detail(trace_id: str) -> dict[str, Any]:
        async with bound:
            return await api.get_trace(trace_id)

    found: list[dict[str, Any]] = []
    page = 1
    while len(found) < filters.limit:
        items, pages = await api.list_traces(
            page=page,
            limit=min(PAGE_SIZE, filters.limit),
            since=filters.since,
            until=filters.until,
            name=filters.name,
            tags=filters.tags,
        )
        for trace in await asyncio.gather(*(detail(str(item["id"])) for item in items)):
            scored = {str(s.get("name")) for s in trace.get("scores") or [] if isinstance(s, dict)}
            if filters.unscored and scored & metric_names:
                continue
            found.append(trace)
            if len(found) == filters.limit:
                break
        if not items or page >= pages:
            break
        page += 1
    return found


def _messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    if isinstance(content, dict) and "content" in content:
        return _text(content["content"])
    return "" if content is None else str(content)


def _role(message: dict[str, Any]) -> str:
    return _ROLES.get(str(message.get("type") or message.get("role") or ""), "other")


def _tokens(observations: list[dict[str, Any]]) -> int | None:
    total, seen = 0, False
    for o in observations:
        if str(o.get("type", "")).upper() != "GENERATION":
            continue
        usage = o.get("usageDetails") or o.get("usage") or {}
        if isinstance(usage, dict) and ("input" in usage or "output" in usage):
            total += int(usage.get("input") or 0) + int(usage.get("output") or 0)
            seen = True
    return total if seen else None


def to_record(trace: dict[str, Any]) -> TurnRecord:
    inputs, outputs = _messages(trace.get("input")), _messages(trace.get("output"))
    asked = [m for m in inputs if _role(m) == "user"]
    user = _text(asked[-1].get("content")) if asked else _text(trace.get("input"))
    chat = [m for m in outputs if _role(m) in ("user", "assistant") and _text(m.get("content"))]
    last_user = max((i for i, m in enumerate(chat) if _role(m) == "user"), default=len(chat))
    answers = [m for m in chat[last_user + 1 :] if _role(m) == "assistant"]
    reply = _text(answers[-1].get("content")) if answers else ("" if outputs else _text(trace.get("output")))
    observations = sorted(
        (o for o in trace.get("observations") or [] if isinstance(o, dict)),
        key=lambda o: str(o.get("startTime")),
    )
    memories = trace.get("output", {}).get("memories") if isinstance(trace.get("output"), dict) else None
    if memories is None:
        recall = [o for o in observations if o.get("name") == "recall" and isinstance(o.get("output"), dict)]
        memories = recall[-1]["output"].get("memories") if recall else []
    tools = [
        ToolCall(
            name=str(o.get("name")),
            args=o["input"] if isinstance(o.get("input"), dict) else {"input": o.get("input")},
            result=_text(o.get("output")),
            is_error=str(o.get("level", "")).upper() == "ERROR",
        )
        for o in observations
        if str(o.get("type", "")).upper() == "TOOL"
    ]
    latency = trace.get("latency")
    return TurnRecord(
        case_id=str(trace["id"]),
        index=0,
        category="trace",
        session=str(trace.get("sessionId") or "-"),
        user=user,
        reply=reply,
        history=[{"role": _role(m), "content": _text(m.get("content"))} for m in chat[:last_user]][
            -HISTORY_MESSAGES:
        ],
        tool_calls=tools,
        memories=[str(m) for m in memories or []],
        latency_ms=float(latency) * 1000 if isinstance(latency, int | float) and latency >= 0 else None,
        tokens=_tokens(observations),
        error=None if reply or trace.get("output") is not None else "the trace has no output",
        trace_id=str(trace["id"]),
        timestamp=str(trace["timestamp"]) if trace.get("timestamp") else None,
    )


def score_id(trace_id: str, metric: str) -> str:
    """The same trace and metric always get the same score id. Langfuse updates a score sent again
    with the same id and timestamp, so a score carries its trace's timestamp: a re-run replaces it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"evals:{trace_id}:{metric}"))


async def write_scores(
    api: LangfuseAPI,
    records: Sequence[TurnRecord],
    scores: Scores,
    *,
    judge_model: str | None,
    on_written: Callable[[], None] = lambda: None,
) -> int:
    bound = asyncio.Semaphore(DETAIL_CONCURRENCY)

    async def post(record: TurnRecord, name: str, value: float, passed: bool, reason: str) -> None:
        assert record.trace_id is not None
        metric = ALL[name]
        body = {
            "id": score_id(record.trace_id, name),
            "traceId": record.trace_id,
            "name": name,
            "value": value,
            "dataType": "NUMERIC",
            "comment": reason[:2000],
            **({"timestamp": record.timestamp} if record.timestamp else {}),
            "metadata": {
                "source": "evals",
                "passed": passed,
                "higher_is_better": metric.higher_is_better,
                "unit": metric.unit,
                "judge_model": judge_model if metric.kind == "judge" else None,
            },
        }
        async with bound:
            await api.create_score(body)
        on_written()

    jobs = [
        post(r, name, s.value, s.passed, s.reason)
        for r in records
        for name, s in scores[r.key].items()
        if s.value is not None
    ]
    await asyncio.gather(*jobs)
    return len(jobs)
