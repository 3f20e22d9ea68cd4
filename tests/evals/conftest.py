"""Evals fixtures: the CLI's environment pointed at the session's PostgreSQL and the fake LLM, which
plays both the agent's model and the judge (whose scores are scripted per metric)."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import FakeLLM

DATA = Path(__file__).resolve().parent / "data"
SMALL = DATA / "small.v1.jsonl"
THRESHOLDS = DATA / "thresholds.toml"
JUDGE_SCORES = {
    "relevancy": 0.9,
    "helpfulness": 0.8,
    "hallucination": 0.1,
    "toxicity": 0.0,
    "conciseness": 0.7,
}


def verdict(score: float, reason: str) -> str:
    return json.dumps({"score": score, "reason": reason})


def script_judge(fake: FakeLLM, *specific: tuple[tuple[str, ...], float, str]) -> None:
    """Specific rules first (the first match wins), then one score per metric."""
    for when, score, reason in specific:
        fake.script_reply(verdict(score, reason), when=when)
    for metric, score in JUDGE_SCORES.items():
        fake.script_reply(verdict(score, f"scripted {metric}"), when=f"Metric: {metric}")


def judge_requests(fake: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in fake.chat_requests if str(r["messages"][-1]["content"]).startswith("Metric: ")]


@pytest.fixture
def eval_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Path:
    for name in (
        "DATABASE_URL",
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_HOST",
        "LANGFUSE_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {
        "LLM_BASE_URL": fake_llm.base_url,  # type: ignore[attr-defined]
        "LLM_MODEL": "fake-model",
        "LLM_REQUEST_TIMEOUT": "5",
        "BCRYPT_ROUNDS": "4",
        "DB_POOL_SIZE": "5",
        "CHECKPOINT_POOL_SIZE": "5",
        "EVAL_DATABASE_URL": pg_url,
        "EVAL_JUDGE_BASE_URL": fake_llm.base_url,  # type: ignore[attr-defined]
        "EVAL_JUDGE_MODEL": "fake-judge",
        "EVAL_JUDGE_RETRY_DELAY": "0.01",
        "EVAL_CACHE_DIR": str(tmp_path / "judge-cache"),
        "EVAL_REPORTS_DIR": str(tmp_path / "reports"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return tmp_path
