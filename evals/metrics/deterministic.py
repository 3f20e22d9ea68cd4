"""Checks that need no model: tools, required and forbidden text, memories, completion, budgets."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.services.chat.events import ToolCallSummary
from evals.metrics.base import Budgets, Metric, Score
from evals.records import TurnRecord


@dataclass(frozen=True)
class DeterministicMetric(Metric):
    applies: Callable[[TurnRecord], bool]
    check: Callable[[TurnRecord, Budgets], Score]
    # Scores what a dataset turn expects: traces carry no expectations, so trace mode never scores it.
    needs_expectations: bool = False

    def measure(self, record: TurnRecord, budgets: Budgets) -> Score:
        # A failed turn has an empty reply and no tools, which would pass "must not contain" or
        # "no tool": every check but `completed` fails with it instead.
        if record.error and self.name != "completed":
            return Score(None, False, f"not measured: the turn failed ({record.error})")
        return self.check(record, budgets)


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def same_value(expected: Any, actual: Any) -> bool:
    """Strings ignore case and whitespace; numbers compare as numbers; objects by the keys expected."""
    if isinstance(expected, str) and isinstance(actual, str):
        return _norm(expected) == _norm(actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and same_value(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual  # True is not 1 here
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return abs(float(expected) - float(actual)) < 1e-9
    return bool(expected == actual)


def _call_text(call: ToolCallSummary) -> str:
    return f"{call.name}({json.dumps(call.args, ensure_ascii=False)})"


def _tool_call(record: TurnRecord, _: Budgets) -> Score:
    assert record.expect is not None and record.expect.tools is not None
    expected, calls = record.expect.tools, record.tool_calls
    called = ", ".join(_call_text(c) for c in calls) or "no tool"
    if not expected:
        return Score(1.0 if not calls else 0.0, not calls, f"expected no tool call; got {called}")
    missing = [e for e in expected if not any(c.name == e.name and same_value(e.args, c.args) for c in calls)]
    value = 1 - len(missing) / len(expected)
    if not missing:
        return Score(value, True, f"called as expected: {called}")
    wanted = ", ".join(f"{e.name}({json.dumps(e.args, ensure_ascii=False)})" for e in missing)
    return Score(value, False, f"missing {wanted}; got {called}")


def _found(reply: str, texts: list[str], patterns: list[str]) -> list[bool]:
    lowered = reply.lower()
    return [t.lower() in lowered for t in texts] + [
        re.search(p, reply, re.IGNORECASE) is not None for p in patterns
    ]


def _contains(record: TurnRecord, _: Budgets) -> Score:
    assert record.expect is not None
    wanted = [*record.expect.must_contain, *(f"/{p}/" for p in record.expect.must_match)]
    found = _found(record.reply, record.expect.must_contain, record.expect.must_match)
    missing = [w for w, ok in zip(wanted, found, strict=True) if not ok]
    reason = f"missing {missing}" if missing else "all present"
    return Score(1 - len(missing) / len(wanted), not missing, reason)


def _not_contains(record: TurnRecord, _: Budgets) -> Score:
    assert record.expect is not None
    forbidden = [*record.expect.must_not_contain, *(f"/{p}/" for p in record.expect.must_not_match)]
    found = _found(record.reply, record.expect.must_not_contain, record.expect.must_not_match)
    present = [f for f, ok in zip(forbidden, found, strict=True) if ok]
    reason = f"contains forbidden {present}" if present else "none present"
    return Score(1 - len(present) / len(forbidden), not present, reason)


def _memory(record: TurnRecord, _: Budgets) -> Score:
    assert record.expect is not None
    wanted = record.expect.memory_recalled
    recalled = " | ".join(record.memories).lower()
    missing = [w for w in wanted if w.lower() not in recalled]
    reason = f"not recalled: {missing}; recalled {record.memories}" if missing else "recalled"
    return Score(1 - len(missing) / len(wanted), not missing, reason)


def _completed(record: TurnRecord, _: Budgets) -> Score:
    if record.error:
        return Score(0.0, False, record.error)
    return Score(1.0, True, "answered")


def _latency(record: TurnRecord, budgets: Budgets) -> Score:
    assert record.latency_ms is not None
    own = record.expect.max_latency_ms if record.expect else None
    budget = own or budgets.max_latency_ms
    ok = record.latency_ms <= budget
    return Score(round(record.latency_ms, 1), ok, f"{record.latency_ms:.0f} ms, budget {budget:.0f} ms")


def _tokens(record: TurnRecord, budgets: Budgets) -> Score:
    assert record.tokens is not None
    own = record.expect.max_tokens if record.expect else None
    budget = own or budgets.max_tokens
    return Score(float(record.tokens), record.tokens <= budget, f"{record.tokens} tokens, budget {budget}")


METRICS: list[DeterministicMetric] = [
    DeterministicMetric(
        "completed",
        "deterministic",
        True,
        "score",
        "The turn got a reply without an error.",
        applies=lambda r: True,
        check=_completed,
    ),
    DeterministicMetric(
        "tool_call",
        "deterministic",
        True,
        "score",
        "The expected tools were called with the expected arguments.",
        applies=lambda r: r.expect is not None and r.expect.tools is not None,
        check=_tool_call,
        needs_expectations=True,
    ),
    DeterministicMetric(
        "must_contain",
        "deterministic",
        True,
        "score",
        "Share of the required texts and patterns found in the reply.",
        applies=lambda r: bool(r.expect and (r.expect.must_contain or r.expect.must_match)),
        check=_contains,
        needs_expectations=True,
    ),
    DeterministicMetric(
        "must_not_contain",
        "deterministic",
        True,
        "score",
        "Share of the forbidden texts and patterns absent from the reply.",
        applies=lambda r: bool(r.expect and (r.expect.must_not_contain or r.expect.must_not_match)),
        check=_not_contains,
        needs_expectations=True,
    ),
    DeterministicMetric(
        "memory_recalled",
        "deterministic",
        True,
        "score",
        "Share of the expected memories recalled into the model's context.",
        applies=lambda r: bool(r.expect and r.expect.memory_recalled),
        check=_memory,
        needs_expectations=True,
    ),
    DeterministicMetric(
        "latency_ms",
        "deterministic",
        False,
        "ms",
        "Wall time of the turn, within its budget.",
        applies=lambda r: r.latency_ms is not None,
        check=_latency,
    ),
    DeterministicMetric(
        "tokens",
        "deterministic",
        False,
        "tokens",
        "Model tokens in and out for the turn, within its budget.",
        applies=lambda r: r.tokens is not None,
        check=_tokens,
    ),
]
