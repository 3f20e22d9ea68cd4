"""Bad input gives one clear line on stderr and exit code 2, never a traceback (and runs nothing)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.cli import main
from tests.evals.conftest import SMALL, THRESHOLDS

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
    with pytest.raises(SystemExit) as exit_:
        main(["traces", "--since", "yesterday-ish"])
    assert exit_.value.code == 2
    assert "neither a duration like 24h nor an ISO time" in capsys.readouterr().err


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
