"""Dataset mode end to end: the real agent and checkpointer, the fake LLM as agent and judge."""

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from email_validator import validate_email

from evals import agent_runner
from evals.cli import main
from evals.metrics import DETERMINISTIC
from tests.evals.conftest import SMALL, THRESHOLDS, Tags, judge_requests, script_judge

TURNS = 6  # in small.v1.jsonl
JUDGED = 5 * TURNS


def run(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(
        ["run", str(SMALL), "--thresholds", str(THRESHOLDS), "--out", str(out), "--progress", "off", *extra]
    )
    return code, json.loads((out / "report.json").read_text())


def test_a_run_reports_what_the_agent_did(eval_env, fake_llm, capsys):
    # Turns that mention Ada get a lower relevancy: the mean must weigh them.
    script_judge(fake_llm, (("Metric: relevancy", "Ada"), 0.5, "partly relevant"))
    code, report = run(eval_env / "r1")
    assert code == 0, report["gate"]
    out = capsys.readouterr()
    assert "gate: PASSED" in out.out
    assert "judge    [" in out.err  # the progress line, summarised when stderr is not a terminal

    assert report["source"]["name"] == "small" and report["source"]["version"] == 1
    assert report["summary"] == {
        "cases": 4,
        "cases_passed": 4,
        "turns": TURNS,
        "checks": 55,
        "checks_passed": 55,
    }
    m = report["metrics"]
    assert m["relevancy"]["mean"] == pytest.approx(statistics.fmean([0.9] * 4 + [0.5] * 2), abs=1e-4)
    assert m["relevancy"]["n"] == TURNS and m["relevancy"]["pass_rate"] == 1.0
    assert (
        m["hallucination"]["mean"] == pytest.approx(0.1) and m["hallucination"]["higher_is_better"] is False
    )
    assert (m["tool_call"]["n"], m["must_contain"]["n"], m["memory_recalled"]["n"]) == (3, 2, 1)
    assert m["latency_ms"]["unit"] == "ms" and 0 < m["latency_ms"]["mean"] < 20000
    assert m["tokens"]["min"] > 0
    # The two directions are averaged apart, and units other than 0..1 not at all.
    groups = report["groups"]
    assert set(groups["lower_is_better"]["metrics"]) == {"hallucination", "toxicity"}
    assert groups["lower_is_better"]["mean"] == pytest.approx(0.05)
    assert not {"hallucination", "toxicity", "latency_ms", "tokens"} & set(
        groups["higher_is_better"]["metrics"]
    )
    assert report["judge"]["requests"] == JUDGED and report["judge"]["cache_hits"] == 0

    cases = {c["id"]: c for c in report["cases"]}
    calc = cases["calc"]["turns"][0]
    assert calc["tool_calls"][0]["name"] == "calculator" and calc["reply"] == "The tool said: 42"
    # The memory told in one session was recalled into the context of the next.
    assert any("Tom" in m for m in cases["pet"]["turns"][1]["memories"])
    assert cases["name"]["turns"][1]["history"][0] == {"role": "user", "content": "My name is Ada."}
    # The judge saw the tool result and the recalled memory it must check the answer against.
    prompts = [r["messages"][-1]["content"] for r in judge_requests(fake_llm)]
    assert any("Metric: hallucination" in p and "calculator" in p and "42" in p for p in prompts)
    assert any("Metric: hallucination" in p and "cat named Tom" in p for p in prompts)


def test_a_rerun_asks_the_judge_nothing(eval_env, fake_llm):
    script_judge(fake_llm)
    code, first = run(eval_env / "r1")
    assert code == 0 and first["judge"]["requests"] == JUDGED
    asked = len(judge_requests(fake_llm))
    code, again = run(eval_env / "r2")
    assert code == 0
    assert len(judge_requests(fake_llm)) == asked, "a cached verdict was asked again"
    assert again["judge"]["requests"] == 0 and again["judge"]["cache_hits"] == JUDGED
    assert again["metrics"]["relevancy"]["mean"] == first["metrics"]["relevancy"]["mean"]


def test_a_regression_fails_the_run_and_names_the_case(eval_env, fake_llm, capsys):
    script_judge(fake_llm)
    code, baseline = run(eval_env / "base")
    assert code == 0
    fake_llm.reset()
    # The agent now answers the calculation without its tool, and the judge dislikes the answer.
    script_judge(fake_llm, (("Metric: relevancy", "rather not say"), 0.0, "dodges the question"))
    fake_llm.script_reply("I would rather not say.", when="[calc:6*7]")
    code, report = run(eval_env / "now", "--baseline", str(eval_env / "base" / "report.json"))
    assert code == 1
    assert "gate: FAILED" in capsys.readouterr().out
    failures = "\n".join(report["gate"]["failures"])
    assert "tool_call: pass rate" in failures and "must_contain: pass rate" in failures
    # Relevancy's mean (0.9 * 5 + 0) / 6 = 0.75 still meets its own gate; its fall from 0.9 does not.
    assert "relevancy: mean" not in failures
    assert "baseline: 1 case(s) got worse" in failures
    assert "baseline: relevancy mean moved the wrong way" in failures
    worse = report["baseline"]["worse"]
    assert [c["id"] for c in worse] == ["calc"]
    assert {"#0 tool_call", "#0 must_contain", "#0 relevancy"} <= set(worse[0]["broke"])
    assert report["worst"][0] == "calc"
    assert baseline["metrics"]["relevancy"]["mean"] > report["metrics"]["relevancy"]["mean"]


def test_the_html_report_is_self_contained_and_shows_the_worst_cases(eval_env, fake_llm):
    script_judge(fake_llm, (("Metric: helpfulness", "rather not say"), 0.1, "Refused a plain sum <b>"))
    fake_llm.script_reply("I would rather not say.", when="[calc:6*7]")
    code, report = run(eval_env / "r")
    assert code == 1
    parser = Tags()
    parser.feed((eval_env / "r" / "report.html").read_text())
    names = [t for t, _ in parser.tags]
    assert names[0] == "html" and "script" not in names and "link" not in names and "img" not in names
    for _, attrs in parser.tags:
        for key in ("src", "href", "xlink:href", "action"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), attrs
    measured = [n for n, m in report["metrics"].items() if m["n"]]
    assert names.count("svg") == len(measured)
    assert names.count("rect") == 10 * len(measured)  # ten bins per distribution
    text = " ".join(parser.text)
    assert "Gate FAILED" in text
    assert "calc" in text and "I would rather not say." in text
    assert "Refused a plain sum <b>" in text  # the judge's reason, escaped rather than markup


def test_only_the_chosen_cases_and_metrics_run(eval_env, fake_llm, capsys):
    code, report = run(eval_env / "r", "--cases", "calc,leak", "--metrics", "deterministic")
    assert [c["id"] for c in report["cases"]] == ["calc", "leak"]
    assert all(c["passed"] for c in report["cases"])
    assert not judge_requests(fake_llm) and report["judge"] is None
    assert set(report["metrics"]) == {m.name for m in DETERMINISTIC}
    # Neither case expects a memory: the memory_recalled gate had nothing to pass on, so the run fails.
    assert report["metrics"]["memory_recalled"]["n"] == 0
    assert code == 1
    assert [f.split(":")[0] for f in report["gate"]["failures"]] == ["memory_recalled"]
    assert "memory_recalled: no samples" in capsys.readouterr().out


def test_every_case_gets_its_own_user_whatever_its_id(eval_env, fake_llm):
    long = "a-very-long-case-id-that-shares-its-first-forty-characters-"
    ids = ["Case-A", "case-a", long + "1", long + "2", "naïve-ünïcode"]
    emails = {agent_runner.eval_email("run1", i) for i in ids}
    assert len(emails) == len(ids)
    for email in emails:
        validate_email(email, check_deliverability=False)
    data = eval_env / "ids.v1.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"id": i, "category": "tools", "turns": [{"user": f"hi {i}", "expect": {"tools": []}}]}
            )
            + "\n"
            for i in ids
        )
    )
    out = eval_env / "r"
    args = [
        "run",
        str(data),
        "--metrics",
        "completed,tool_call",  # what these turns exercise: a gate over no samples would fail the run
        "--thresholds",
        str(THRESHOLDS),
        "--out",
        str(out),
    ]
    assert main([*args, "--progress", "off"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert sorted(c["id"] for c in report["cases"] if c["passed"]) == sorted(ids)


def test_a_case_whose_user_cannot_be_made_fails_alone(eval_env, fake_llm, monkeypatch):
    real = agent_runner.create_user

    async def flaky(rt: Any, run_id: str, case_id: str) -> agent_runner.EvalUser:
        if case_id == "name":
            raise RuntimeError("the database said no")
        return await real(rt, run_id, case_id)

    monkeypatch.setattr(agent_runner, "create_user", flaky)
    code, report = run(eval_env / "r", "--metrics", "deterministic")
    assert code == 1
    cases = {c["id"]: c for c in report["cases"]}
    assert [c for c in cases if not cases[c]["passed"]] == ["name"]
    errors = {t["error"] for t in cases["name"]["turns"]}
    assert errors == {"could not create the eval user: RuntimeError: the database said no"}
    assert any(f.startswith("completed: pass rate") for f in report["gate"]["failures"])


@pytest.mark.slow
def test_the_starter_dataset_runs_end_to_end(eval_env, fake_llm):
    # The fake only echoes, so its answers fail most checks; what matters is that all 50 cases
    # run through the real service without an error, and the report covers every one.
    out = eval_env / "starter"
    code = main(["run", "starter", "--metrics", "deterministic", "--out", str(out), "--progress", "off"])
    report = json.loads((out / "report.json").read_text())
    assert code == 1
    assert report["summary"]["cases"] == report["source"]["cases"] >= 40
    assert report["metrics"]["completed"]["pass_rate"] == 1.0
    assert report["metrics"]["tool_call"]["n"] >= 10
