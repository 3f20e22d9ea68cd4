"""Bad input gives one clear line on stderr and exit code 2, never a traceback (and runs nothing)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.cli import main
from tests.conftest import free_port
from tests.evals.conftest import SMALL, THRESHOLDS
from tests.fake_llm import FakeLLM, Fault

ROOT = Path(__file__).resolve().parents[2]


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_missing_dataset(eval_env, capsys):
    err = fails(capsys, "run", "no-such-dataset")
    assert "no dataset named 'no-such-dataset'" in err and "starter" in err
    assert "dataset file not found" in fails(capsys, "run", str(eval_env / "missing.jsonl"))


def test_a_malformed_jsonl_line_is_named_by_number(eval_env, capsys):
    bad = eval_env / "bad.v1.jsonl"
    bad.write_text(SMALL.read_text().splitlines()[0] + '\n{"id": "broken", "turns": [\n')
    assert f"{bad}:2: not valid JSON" in fails(capsys, "run", str(bad))


def test_an_invalid_case_says_what_is_wrong(eval_env, capsys):
    bad = eval_env / "bad.v1.jsonl"
    bad.write_text(
        '{"id": "x", "category": "gossip", "turns": [{"user": "hi", "expect": {"tool": "calculator"}}]}\n'
    )
    err = fails(capsys, "run", str(bad))
    assert ":1: invalid case:" in err and "category" in err and "turns.0.expect.tool" in err


def test_an_unknown_metric_in_the_thresholds(eval_env, capsys):
    gates = eval_env / "gates.toml"
    gates.write_text("[metrics.relevance]\nmin_mean = 0.5\n")
    err = fails(capsys, "run", str(SMALL), "--thresholds", str(gates))
    assert "unknown metric(s) ['relevance']" in err
    gates.write_text("[metrics.relevancy]\nminimum = 0.5\n")
    assert "metrics.relevancy.minimum" in fails(capsys, "run", str(SMALL), "--thresholds", str(gates))
    gates.write_text("[metrics.tool_call]\npass_score = 0.5\n")
    assert "judge metrics only" in fails(capsys, "run", str(SMALL), "--thresholds", str(gates))
    gates.write_text("[metrics\n")
    assert "not a readable TOML file" in fails(capsys, "run", str(SMALL), "--thresholds", str(gates))


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ("metrics = 1", "metrics: Input should be a valid dictionary"),
        ("budgets = 'fast'", "budgets: Input should be"),
        ("[metrics.relevancy]\nmin_mean = true", "metrics.relevancy.min_mean"),
        ("[baseline]\nmax_worse_cases = '0'", "baseline.max_worse_cases"),
    ],
)
def test_thresholds_of_the_wrong_type(eval_env, capsys, toml, where):
    gates = eval_env / "gates.toml"
    gates.write_text(toml + "\n")
    assert where in fails(capsys, "run", str(SMALL), "--thresholds", str(gates))


def agent_calls(fake: FakeLLM) -> int:
    return sum(1 for r in fake.chat_requests if r.get("model") == "fake-model")


def test_a_bad_baseline_is_refused_before_the_agent_runs(eval_env, fake_llm, capsys):
    base = eval_env / "base.json"
    base.write_text('{"cases": [{}], "metrics": {}}')
    err = fails(capsys, "run", str(SMALL), "--baseline", str(base))
    assert "not a valid evals report" in err and "cases.0.id" in err
    report = {
        "schema_version": 1,
        "mode": "dataset",
        "source": {"name": "small", "version": 1},
        "cases": [{"id": "calc", "quality": 1.0, "checks": {"#0 completed": True}}],
        "metrics": {"completed": {"mean": 1.0, "higher_is_better": True, "unit": "score"}},
    }
    base.write_text(json.dumps(report))
    err = fails(capsys, "run", str(SMALL), "--baseline", str(base))
    assert "measured the metrics ['completed']" in err and "--metrics completed" in err
    base.write_text(json.dumps({**report, "source": {"name": "small", "version": 2}}))
    err = fails(capsys, "run", str(SMALL), "--metrics", "completed", "--baseline", str(base))
    assert "measured dataset small v2, this run measures small v1" in err
    base.write_text(json.dumps({**report, "mode": "traces"}))
    assert "is a traces report" in fails(capsys, "run", str(SMALL), "--baseline", str(base))
    assert agent_calls(fake_llm) == 0


def test_a_judge_that_cannot_answer_stops_the_run_before_the_agent(eval_env, fake_llm, monkeypatch, capsys):
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", "localhost:8000/v1")
    assert "bad EVAL_* setting: judge_base_url: Value error, must be an http(s) URL" in fails(
        capsys, "run", str(SMALL)
    )
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    err = fails(capsys, "run", str(SMALL))
    assert "did not answer a first request" in err and "ConnectError" in err
    monkeypatch.setenv("EVAL_JUDGE_BASE_URL", fake_llm.base_url)
    fake_llm.script(Fault(status=401))
    err = fails(capsys, "run", str(SMALL))
    assert "did not answer a first request" in err and "HTTP 401" in err
    assert agent_calls(fake_llm) == 0


def test_a_cache_dir_that_cannot_be_written(eval_env, fake_llm, monkeypatch, capsys):
    blocker = eval_env / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("EVAL_CACHE_DIR", str(blocker / "cache"))
    assert f"EVAL_CACHE_DIR {blocker / 'cache'} is not writable" in fails(capsys, "run", str(SMALL))
    assert not fake_llm.chat_requests


def test_memory_cases_need_memory(eval_env, fake_llm, monkeypatch, capsys):
    monkeypatch.setenv("MEMORY_ENABLED", "false")
    err = fails(capsys, "run", str(SMALL), "--metrics", "deterministic")
    assert "MEMORY_ENABLED is false, but 1 case(s) expect recalled memories (pet)" in err
    assert agent_calls(fake_llm) == 0


def test_other_bad_input(eval_env, capsys, monkeypatch):
    assert "unknown metric 'fluency'" in fails(capsys, "run", str(SMALL), "--metrics", "fluency")
    baseline = eval_env / "not-a-report.json"
    baseline.write_text('{"hello": 1}')
    assert "not an evals report" in fails(capsys, "run", str(SMALL), "--baseline", str(baseline))
    assert "no such case(s) in small: ['nope']" in fails(capsys, "run", str(SMALL), "--cases", "calc,nope")
    monkeypatch.setenv("EVAL_JUDGE_CONCURRENCY", "0")
    assert "bad EVAL_* setting: judge_concurrency" in fails(capsys, "run", str(SMALL))
    monkeypatch.delenv("EVAL_JUDGE_CONCURRENCY")
    monkeypatch.delenv("EVAL_JUDGE_BASE_URL")
    err = fails(capsys, "run", str(SMALL), "--thresholds", str(THRESHOLDS))
    assert "judge metrics need EVAL_JUDGE_BASE_URL" in err
    for name in ("LLM_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert "set LLM_BASE_URL" in fails(capsys, "run", str(SMALL), "--metrics", "deterministic")
    assert "LANGFUSE_PUBLIC_KEY" in fails(capsys, "traces", "--metrics", "deterministic")
    for args, message in [
        (["traces", "--since", "yesterday-ish"], "neither a duration like 24h nor an ISO time"),
        (["run", str(SMALL), "--concurrency", "65"], "not a whole number from 1 to 64"),
        (["run", str(SMALL), "--concurrency", "0"], "not a whole number from 1 to 64"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
    err = fails(capsys, "traces", "--since", "2025-01-02", "--until", "2025-01-01T12:00:00Z")
    assert "--since (2025-01-02T00:00:00+00:00) is not before --until (2025-01-01T12:00:00+00:00)" in err


def test_the_module_entry_point_exits_2_with_a_message():
    env = {**os.environ, "APP_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-m", "evals", "run", "no-such-dataset"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "error: no dataset named 'no-such-dataset'" in done.stderr
    assert "Traceback" not in done.stderr
