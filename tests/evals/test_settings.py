"""The evals read the service's .env files, and the tests never do: a developer's keys stay unused."""

import os
from pathlib import Path

import pytest

from app import config as app_config
from evals import commands
from evals.cli import main
from evals.settings import load_eval_settings
from tests.evals.conftest import REACHES_OUT

REAL = """\
LANGFUSE_PUBLIC_KEY=pk-lf-real
LANGFUSE_SECRET_KEY=sk-lf-real
LANGFUSE_HOST=https://langfuse.invalid
EVAL_JUDGE_BASE_URL=https://judge.invalid/v1
EVAL_JUDGE_API_KEY=sk-judge-real
LLM_API_KEY=sk-llm-real
MEMORY_EMBEDDING_BASE_URL=https://embeddings.invalid/v1
"""


@pytest.fixture
def developer_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with a developer's .env (and .env.test, since the tests run with APP_ENV=test)."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / ".env").write_text(REAL)
    (root / ".env.test").write_text("EVAL_JUDGE_MODEL=gpt-real\n")
    monkeypatch.setattr(app_config, "PROJECT_ROOT", root)
    return root


def test_the_evals_read_env_and_the_app_env_file(developer_checkout, monkeypatch):
    for name in [n for n in os.environ if n.startswith(REACHES_OUT)]:
        monkeypatch.delenv(name)
    settings = load_eval_settings()
    assert settings.judge_base_url == "https://judge.invalid/v1" and settings.judge_model == "gpt-real"
    assert settings.langfuse_public_key is not None
    assert settings.langfuse_public_key.get_secret_value() == "pk-lf-real"


def test_under_eval_env_no_env_file_is_read(developer_checkout, eval_env, fake_llm, capsys):
    settings = load_eval_settings()
    assert settings.judge_base_url == fake_llm.base_url and settings.judge_model == "fake-judge"
    assert settings.judge_api_key is None and settings.langfuse_public_key is None
    agent = commands.agent_settings(settings)
    assert agent.llm_api_key is None and agent.memory_embedding_base_url is None
    assert agent.langfuse_public_key is None and agent.llm_base_url == fake_llm.base_url
    # Trace mode finds no keys, so it never reaches the Langfuse named in the file.
    assert main(["traces", "--metrics", "deterministic"]) == 2
    assert "trace mode needs LANGFUSE_PUBLIC_KEY" in capsys.readouterr().err
