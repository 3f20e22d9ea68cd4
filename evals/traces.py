"""Trace mode: recent `chat.turn` traces from Langfuse as turn records, and their scores written back."""

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.services.chat.events import ToolCallSummary
from evals.langfuse_api import LangfuseAPI, LangfuseError
from evals.metrics import ALL, Metric
from evals.records import TurnRecord
from evals.scoring import Scores, applicable

PAGE_SIZE = 50
DETAIL_CONCURRENCY = 5
HISTORY_MESSAGES = 10
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class TraceFilters:
    since: datetime
    # Always set (the CLI pins it to the run's start): pages of a window still filling up would shift.
    until: datetime
    limit: int = 50
    name: str | None = "chat.turn"
    tags: list[str] = field(default_factory=list)
    unscored: bool = False  # skip traces that already have a score for every metric that applies

    def describe(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "limit": self.limit,
            "name": self.name,
            "tags": self.tags,
            "unscored": self.unscored,
        }


@dataclass
class Fetched:
    records: list[TurnRecord] = field(default_factory=list)
    # Per trace key: metrics it already has a score for, left alone when only unscored ones are wanted.
    already_scored: dict[str, set[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # why a listed trace was not scored


def score_names(trace: dict[str, Any]) -> set[str]:
    return {str(s.get("name")) for s in trace.get("scores") or [] if isinstance(s, dict)}


async def fetch(api: LangfuseAPI, filters: TraceFilters, metrics: Sequence[Metric]) -> Fetched:
    """Traces in full (observations and scores included), newest first, at most `limit`."""
    bound = asyncio.Semaphore(DETAIL_CONCURRENCY)

    async def detail(trace_id: str) -> tuple[str, dict[str, Any] | None]:
        async with bound:
            return trace_id, await api.get_trace(trace_id)

    out = Fetched()
    seen: set[str] = set()
    page = 1
    while len(out.records) < filters.limit:
        items, pages = await api.list_traces(
            page=page,
            limit=min(PAGE_SIZE, filters.limit),
            since=filters.since,
            until=filters.until,
            name=filters.name,
            tags=filters.tags,
        )
        # A trace that arrives late with an older timestamp shifts the later pages: one may repeat.
        new = [str(item["id"]) for item in items if str(item["id"]) not in seen]
        seen.update(new)
        for trace_id, trace in await asyncio.gather(*(detail(i) for i in new)):
            if trace is None:
                out.skipped.append(f"{trace_id}: deleted since it was listed (HTTP 404)")
                continue
            record = to_record(trace)
            if filters.unscored:
                have = score_names(trace)
                if not {m.name for m in applicable(record, metrics)} - have:
                    continue
                out.already_scored[record.key] = have
            out.records.append(record)
            if len(out.records) == filters.limit:
                break
        if not items or page >= pages:
            break
        page += 1
    return out


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
    """The service traces a turn as the graph's input and final state, a `recall` span whose output
    holds the recalled memories, a TOOL observation per tool call and a GENERATION per model call."""
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
        ToolCallSummary(
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


@dataclass
class Written:
    written: int = 0
    failed: list[str] = field(default_factory=list)  # one line per score Langfuse did not take


def score_count(records: Sequence[TurnRecord], scores: Scores) -> int:
    return sum(1 for r in records for s in scores[r.key].values() if s.value is not None)


async def write_scores(
    api: LangfuseAPI,
    records: Sequence[TurnRecord],
    scores: Scores,
    *,
    judge_model: str | None,
    on_written: Callable[[], None] = lambda: None,
) -> Written:
    """Every measured score, each on its own: one Langfuse refuses is counted, not fatal to the rest."""
    bound = asyncio.Semaphore(DETAIL_CONCURRENCY)
    result = Written()

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
        try:
            async with bound:
                await api.create_score(body)
        except LangfuseError as exc:
            result.failed.append(f"{record.trace_id} {name}: {exc}")
        else:
            result.written += 1
        on_written()

    await asyncio.gather(
        *(
            post(r, name, s.value, s.passed, s.reason)
            for r in records
            for name, s in scores[r.key].items()
            if s.value is not None
        )
    )
    return result
