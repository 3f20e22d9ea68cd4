"""Evals fixtures: the CLI's environment on the session's PostgreSQL and the fake LLM as agent and judge."""

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from app import config as app_config
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


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


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


# Whatever a developer's shell or .env sets for these could send a test's calls to a real host.
REACHES_OUT = ("EVAL_", "LANGFUSE_", "LLM_", "OPENAI_", "MEMORY_", "DATABASE_URL")


@pytest.fixture
def eval_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Path:
    """Only what is set here: no variable from the shell that reaches out, and no .env file (the evals'
    settings and the agent's read the same files, through app.config._env_files)."""
    for name in [n for n in os.environ if n.startswith(REACHES_OUT)]:
        monkeypatch.delenv(name)
    nowhere = tmp_path / "no-env-files"
    monkeypatch.setattr(app_config, "_env_files", lambda: (nowhere / ".env", nowhere / ".env.test"))
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
