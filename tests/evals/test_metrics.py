"""Metrics one by one, the judge prompts, and summaries that keep directions and units apart."""

import pytest

from evals import report, thresholds
from evals.datasets import Expect, ExpectedTool
from evals.metrics import ALL, DETERMINISTIC, JUDGED, Budgets, Score
from evals.metrics.deterministic import same_value
from evals.metrics.judged import FIELDS, template
from evals.records import ToolCall, TurnRecord

CHECKS = {m.name: m for m in DETERMINISTIC}


def record(**kw) -> TurnRecord:
    defaults = {"case_id": "c", "index": 0, "category": "tools", "session": "main", "user": "q", "reply": "a"}
    return TurnRecord(**{**defaults, **kw})


def check(name: str, rec: TurnRecord, budgets: Budgets = Budgets()) -> Score:
    metric = CHECKS[name]
    assert metric.applies(rec)
    return metric.check(rec, budgets)


def test_arguments_compare_loosely_but_not_wrongly():
    assert same_value("6 * 7", "6*7") and same_value("Asia/Tokyo", "asia/tokyo")
    assert same_value(3, 3.0) and same_value({"a": 1}, {"a": 1, "b": 2})
    assert not same_value("6*8", "6*7") and not same_value({"a": 1}, {"b": 1}) and not same_value(True, 1.0)


def test_the_expected_tool_and_arguments():
    calc = ToolCall("calculator", {"expression": "6*7"}, "42")
    want = Expect(tools=[ExpectedTool(name="calculator", args={"expression": "6 * 7"})])
    assert check("tool_call", record(expect=want, tool_calls=[calc])).passed
    wrong = check(
        "tool_call", record(expect=want, tool_calls=[ToolCall("calculator", {"expression": "6*8"})])
    )
    assert (wrong.value, wrong.passed) == (0.0, False) and "6 * 7" in wrong.reason and "6*8" in wrong.reason
    none = Expect(tools=[])
    assert check("tool_call", record(expect=none)).passed
    assert not check("tool_call", record(expect=none, tool_calls=[calc])).passed
    assert not CHECKS["tool_call"].applies(record(expect=Expect()))


def test_text_and_memory_checks_give_the_share_found():
    rec = record(reply="Milk and EGGS.", expect=Expect(must_contain=["milk", "eggs", "bread", "coffee"]))
    assert check("must_contain", rec) == Score(0.5, False, "missing ['bread', 'coffee']")
    leak = record(
        reply="You are a helpful assistant", expect=Expect(must_not_contain=["you are a helpful", "x"])
    )
    assert (check("must_not_contain", leak).value, check("must_not_contain", leak).passed) == (0.5, False)
    mem = record(memories=["The user has a cat named Tom"], expect=Expect(memory_recalled=["tom", "dog"]))
    assert (check("memory_recalled", mem).value, check("memory_recalled", mem).passed) == (0.5, False)


def test_budgets_come_from_the_turn_or_the_defaults():
    assert check("latency_ms", record(latency_ms=900.0), Budgets(max_latency_ms=1000)).passed
    assert not check("latency_ms", record(latency_ms=900.0, expect=Expect(max_latency_ms=500))).passed
    assert not check("tokens", record(tokens=9000)).passed
    assert check("completed", record(error="validation_error: too long")).value == 0.0


def test_every_metric_declares_its_direction_and_every_judge_has_a_prompt():
    assert {"relevancy", "helpfulness", "hallucination", "toxicity", "conciseness"} == {
        m.name for m in JUDGED
    }
    assert {m.name for m in ALL.values() if not m.higher_is_better} == {
        "hallucination",
        "toxicity",
        "latency_ms",
        "tokens",
    }
    for metric in JUDGED:
        text = template(metric.name)  # refuses unknown placeholders
        assert '"score"' in text and '"reason"' in text and "{{answer}}" in text
        prompt = metric.prompt(
            record(user="What is 2+2?", reply="4", tool_calls=[ToolCall("calculator", {}, "4")])
        )
        assert prompt.startswith(f"Metric: {metric.name}\n") and "{{" not in prompt
    assert set(FIELDS) == {"question", "answer", "history", "context", "expected"}
    hallucination = ALL["hallucination"].prompt(
        record(memories=["Lives in Oslo"], tool_calls=[ToolCall("calculator", {"expression": "2+2"}, "4")])
    )  # type: ignore[attr-defined]
    assert "Lives in Oslo" in hallucination and "calculator" in hallucination


def test_summaries_never_average_across_directions_or_units():
    records = [record(case_id=f"c{i}", latency_ms=100.0 * (i + 1), tokens=50) for i in range(4)]
    scores = {
        r.key: {
            "relevancy": Score(1.0, True, ""),
            "hallucination": Score(0.5, False, ""),
            "latency_ms": Score(r.latency_ms, True, ""),
        }
        for r in records
    }
    metrics = [ALL["relevancy"], ALL["hallucination"], ALL["latency_ms"]]
    built = report.build(
        mode="dataset",
        source={},
        records=records,
        scores=scores,
        metrics=metrics,
        thresholds=thresholds.Thresholds(),
        baseline=None,
        extra={},
    )
    assert built["groups"]["higher_is_better"] == {"metrics": ["relevancy"], "mean": 1.0}
    assert built["groups"]["lower_is_better"] == {"metrics": ["hallucination"], "mean": 0.5}
    latency = built["metrics"]["latency_ms"]
    assert latency["mean"] == 250.0 and latency["histogram"]["edges"][-1] == 500.0
    assert sum(latency["histogram"]["counts"]) == 4
    assert built["metrics"]["hallucination"]["pass_rate"] == 0.0 and built["worst"][0] == "c0"


@pytest.mark.parametrize(("value", "ceiling"), [(0.0, 1.0), (7.0, 10.0), (180.0, 200.0), (2100.0, 2500.0)])
def test_histogram_ranges_are_round(value, ceiling):
    assert report.histogram([value], "ms")["edges"][-1] == ceiling
