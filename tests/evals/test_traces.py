"""Trace mode against a loopback fake of Langfuse's public API: list, filter, score, write back."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evals import traces
from evals.cli import main, moment
from evals.langfuse_api import LangfuseAPI
from evals.metrics import JUDGED
from tests.evals.conftest import THRESHOLDS, judge_requests, script_judge
from tests.evals.langfuse_fake import PUBLIC_KEY, SECRET_KEY, FakeLangfuse, make_trace


@pytest.fixture
def langfuse(eval_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLangfuse]:
    with FakeLangfuse() as fake:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY)
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("LANGFUSE_HOST", fake.url)
        yield fake


def run(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["traces", "--thresholds", str(THRESHOLDS), "--out", str(out), "--progress", "off", *extra]
    code = main(args)
    return code, json.loads((out / "report.json").read_text())


def test_recent_traces_are_scored_and_the_scores_written_back(eval_env, fake_llm, langfuse, capsys):
    tool_turn = make_trace(
        user="What is 6*7?",
        reply="It is 42.",
        tools=(("calculator", {"expression": "6*7"}, "42"),),
        memories=("Works as a nurse",),
        history=(("user", "hello"), ("assistant", "Hi! How can I help?")),
    )
    plain = [
        make_trace(user=f"question {i}", reply=f"answer {i}", age=timedelta(minutes=10 + i)) for i in range(3)
    ]
    old = make_trace(user="from last week", reply="old", age=timedelta(days=3))
    staging = make_trace(user="staging turn", reply="x", tags=("env:staging",))
    scored = make_trace(user="already scored", reply="y", age=timedelta(minutes=1))
    # Scored by every metric that applies to a trace (those with expectations never do).
    scored["scores"] = [
        {"id": f"s-{name}", "name": name, "value": 0.5, "dataType": "NUMERIC"}
        for name in ("completed", "latency_ms", "tokens", *(m.name for m in JUDGED))
    ]
    langfuse.add(tool_turn, *plain, old, staging, scored)
    script_judge(fake_llm)

    code, report = run(
        eval_env / "r1", "--since", "24h", "--tag", "env:production", "--limit", "3", "--unscored"
    )
    assert code == 0, report["gate"]
    # Newest first, the already-scored one skipped, so a second page was needed for the third.
    ids = [c["id"] for c in report["cases"]]
    assert ids == [tool_turn["id"], plain[0]["id"], plain[1]["id"]]
    lists = [q for method, path, q in langfuse.requests if path == "/api/public/traces"]
    assert [q["page"] for q in lists] == [["1"], ["2"]]
    assert all(
        q["tags"] == ["env:production"] and q["name"] == ["chat.turn"] and "fromTimestamp" in q for q in lists
    )

    turn = report["cases"][0]["turns"][0]
    assert (turn["user"], turn["reply"]) == ("What is 6*7?", "It is 42.")
    assert turn["tool_calls"] == [
        {"name": "calculator", "args": {"expression": "6*7"}, "result": "42", "is_error": False}
    ]
    assert turn["memories"] == ["Works as a nurse"]
    assert turn["history"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
    ]
    assert (turn["latency_ms"], turn["tokens"]) == (1250.0, 150)
    prompt = next(
        r["messages"][-1]["content"]
        for r in judge_requests(fake_llm)
        if "Metric: hallucination" in r["messages"][-1]["content"]
        and "What is 6*7?" in r["messages"][-1]["content"]
    )
    assert "Works as a nurse" in prompt and "calculator" in prompt and "42" in prompt

    # Every measured score went back to its trace, with its reason, under a stable id.
    written = langfuse.scores_of(tool_turn["id"])
    # Traces carry no dataset expectations: only completion, cost and the judge's metrics apply.
    assert set(written) == {"completed", "latency_ms", "tokens", *(m.name for m in JUDGED)}
    relevancy = written["relevancy"]
    assert relevancy["value"] == 0.9 and relevancy["dataType"] == "NUMERIC"
    assert (
        relevancy["comment"] == "scripted relevancy" and relevancy["metadata"]["judge_model"] == "fake-judge"
    )
    assert relevancy["id"] == traces.score_id(tool_turn["id"], "relevancy")
    assert relevancy["timestamp"] == tool_turn["timestamp"]  # with the id, what makes a re-run an update
    assert written["hallucination"]["metadata"]["higher_is_better"] is False
    assert report["scores_written"] == 3 * len(written)
    assert f"scores written to Langfuse: {3 * len(written)}" in capsys.readouterr().out

    # Now all three are scored: an unscored-only run finds nothing new beyond the rest of the window.
    asked = len(judge_requests(fake_llm))
    code, again = run(
        eval_env / "r2", "--since", "24h", "--tag", "env:production", "--limit", "3", "--unscored"
    )
    assert code == 0
    assert [c["id"] for c in again["cases"]] == [plain[2]["id"]]
    assert len(judge_requests(fake_llm)) == asked + 5

    # Without --unscored the newest three come back: two are scored again, which replaces their
    # scores and asks the judge nothing; only the third (scored by someone else) adds scores.
    count, asked = len(langfuse.scores), len(judge_requests(fake_llm))
    code, third = run(eval_env / "r3", "--since", "24h", "--tag", "env:production", "--limit", "3")
    assert code == 0
    assert [c["id"] for c in third["cases"]] == [scored["id"], tool_turn["id"], plain[0]["id"]]
    assert third["scores_written"] == 3 * len(written)
    assert len(langfuse.scores) == count + len(written)
    assert len(judge_requests(fake_llm)) == asked + len(JUDGED)


def test_no_write_scores_without_touching_langfuse(eval_env, fake_llm, langfuse):
    langfuse.add(make_trace(user="hi", reply="hello"))
    script_judge(fake_llm)
    code, report = run(eval_env / "r", "--no-write", "--metrics", "relevancy,latency_ms")
    assert code == 0
    assert report["summary"]["turns"] == 1 and set(report["metrics"]) == {"relevancy", "latency_ms"}
    assert not langfuse.scores
    assert not [r for r in langfuse.requests if r[0] == "POST"]


def test_wrong_keys_are_a_clear_error(eval_env, langfuse, monkeypatch, capsys):
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-wrong")
    assert main(["traces", "--out", str(eval_env / "r"), "--metrics", "deterministic"]) == 2
    err = capsys.readouterr().err
    assert "refused the keys (HTTP 401)" in err and "Traceback" not in err


def test_a_trace_without_tools_or_memories_still_converts():
    trace = make_trace(user="hello", reply="hi there")
    trace["output"] = "hi there"  # a plain string output, as a non-graph trace would have
    del trace["observations"][0]
    record = traces.to_record(trace)
    assert (record.user, record.reply, record.memories, record.tool_calls) == ("hello", "hi there", [], [])
    assert record.tokens == 150 and record.error is None


def test_unscored_scores_only_the_missing_metrics(eval_env, fake_llm, langfuse):
    partly = make_trace(user="partly scored", reply="a")
    partly["scores"] = [{"id": "s1", "name": "relevancy", "value": 1.0, "dataType": "NUMERIC"}]
    fully = make_trace(user="fully scored", reply="b")
    fully["scores"] = [
        {"id": f"s-{n}", "name": n, "value": 1.0, "dataType": "NUMERIC"} for n in ("relevancy", "helpfulness")
    ]
    langfuse.add(partly, fully)
    script_judge(fake_llm)
    code, report = run(eval_env / "r", "--unscored", "--metrics", "relevancy,helpfulness")
    assert code == 0, report["gate"]
    assert [c["id"] for c in report["cases"]] == [partly["id"]]
    assert set(report["cases"][0]["turns"][0]["scores"]) == {"helpfulness"}
    assert [r["messages"][-1]["content"].split("\n")[0] for r in judge_requests(fake_llm)] == [
        "Metric: helpfulness"
    ]
    assert set(langfuse.scores_of(partly["id"])) == {"helpfulness"}


def test_pages_read_while_traces_arrive_hold_no_repeats(eval_env, fake_llm, langfuse, monkeypatch):
    monkeypatch.setattr(traces, "PAGE_SIZE", 2)
    listed = [make_trace(user=f"q{i}", reply=f"a{i}", age=timedelta(minutes=10 + i)) for i in range(5)]
    langfuse.add(*listed)

    def arrive(page: int) -> None:
        if page == 1:
            # One from after the run started, one ingested late with an earlier time: both land
            # on top of the list and would shift the next page by one.
            langfuse.add(make_trace(user="future", reply="f", age=timedelta(minutes=-1)))
            langfuse.add(make_trace(user="late", reply="l", age=timedelta(minutes=2)))

    langfuse.after_list = arrive
    code, report = run(eval_env / "r", "--limit", "4", "--metrics", "deterministic", "--no-write")
    assert code == 0, report["gate"]
    assert [c["id"] for c in report["cases"]] == [t["id"] for t in listed[:4]]
    until = report["source"]["filters"]["until"]
    lists = [q for _, path, q in langfuse.requests if path == "/api/public/traces"]
    assert len(lists) == 3
    assert {q["toTimestamp"][0] for q in lists} == {until.replace("+00:00", "Z")}


def test_a_trace_deleted_after_listing_is_skipped_with_a_note(eval_env, fake_llm, langfuse, capsys):
    kept, gone = (
        make_trace(user="kept", reply="k"),
        make_trace(user="gone", reply="g", age=timedelta(hours=1)),
    )
    langfuse.add(kept, gone)
    langfuse.after_list = lambda page: langfuse.remove(gone["id"])
    code, report = run(eval_env / "r", "--metrics", "deterministic", "--no-write")
    assert code == 0, report["gate"]
    assert [c["id"] for c in report["cases"]] == [kept["id"]]
    assert report["source"]["skipped"] == [f"{gone['id']}: deleted since it was listed (HTTP 404)"]
    assert f"skipped trace {gone['id']}" in capsys.readouterr().out


def test_a_score_langfuse_refuses_fails_the_run_but_keeps_the_report(eval_env, fake_llm, langfuse, capsys):
    first, second = make_trace(user="one", reply="1"), make_trace(user="two", reply="2")
    langfuse.add(first, second)
    langfuse.refuse.add((first["id"], "latency_ms"))
    code, report = run(eval_env / "r", "--metrics", "completed,latency_ms")
    assert code == 1
    assert report["scores_written"] == 3 and len(report["scores_failed"]) == 1
    assert report["scores_failed"][0].startswith(f"{first['id']} latency_ms: ")
    assert report["gate"]["failures"] == ["langfuse: 1 score(s) could not be written back"]
    assert set(langfuse.scores_of(first["id"])) == {"completed"}
    assert set(langfuse.scores_of(second["id"])) == {"completed", "latency_ms"}
    assert "not written: " in capsys.readouterr().out


def test_no_matching_trace_is_a_failed_run(eval_env, fake_llm, langfuse, capsys):
    langfuse.add(make_trace(user="old", reply="o", age=timedelta(days=3)))
    code, report = run(eval_env / "r", "--since", "24h", "--metrics", "deterministic")
    assert code == 1 and report["summary"]["turns"] == 0
    assert report["gate"]["failures"] == ["no traces matched the filters"]
    assert "warning: no traces matched the filters" in capsys.readouterr().err


async def test_langfuse_retry_after_is_honoured():
    with FakeLangfuse() as fake:
        fake.add(make_trace(user="hi", reply="hello"))
        fake.faults.append((429, {"Retry-After": "0"}))
        # Its own back-off would wait 15 s or more.
        async with LangfuseAPI(fake.url, public_key=PUBLIC_KEY, secret_key=SECRET_KEY, retry_delay=30) as api:
            start = time.monotonic()
            items, pages = await api.list_traces(page=1, limit=10)
        assert time.monotonic() - start < 5 and len(items) == 1 and pages == 1
        assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00+02:00", datetime(2025, 3, 1, 10, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, 0, tzinfo=UTC)),  # no zone: UTC
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)
def test_times_are_read_as_iso_with_utc_by_default(text, expected):
    assert moment(text) == expected and moment(text).utcoffset() is not None


def test_durations_count_back_from_now():
    for text, delta in [
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
    ]:
        assert abs(datetime.now(UTC) - delta - moment(text)) < timedelta(seconds=5)


def test_until_bounds_the_window(eval_env, fake_llm, langfuse):
    inside = make_trace(user="inside", reply="i", age=timedelta(hours=3))
    langfuse.add(inside, make_trace(user="too new", reply="n", age=timedelta(minutes=30)))
    until = (datetime.now(UTC) - timedelta(hours=1)).astimezone().isoformat()  # local time, with offset
    code, report = run(eval_env / "r", "--until", until, "--metrics", "deterministic", "--no-write")
    assert code == 0, report["gate"]
    assert [c["id"] for c in report["cases"]] == [inside["id"]]
    assert datetime.fromisoformat(report["source"]["filters"]["until"]) == datetime.fromisoformat(until)
