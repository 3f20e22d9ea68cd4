"""Settings from the environment and `.env.<APP_ENV>` files; database URL spelling."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

import app.config
from app.config import DEV_SECRET, PROJECT_ROOT, Environment, Rate, Settings, load_settings
from app.db import normalise_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray setting from the shell or a developer's `.env` file; APP_ENV stays "test" (conftest)."""
    for name in Settings.model_fields:
        if name != "app_env":
            monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("APP_ENV", "test")
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(app.config, "PROJECT_ROOT", root)
    return root


def random_secret() -> str:
    return secrets.token_urlsafe(36)  # 48 characters


# --- the JWT secret in production


@pytest.mark.parametrize(
    "secret",
    [DEV_SECRET, "", "change-me", "CHANGEME", "secret", "too-short-but-random-9f3k2"],
    ids=["default", "empty", "change-me", "CHANGEME", "secret", "short"],
)
@pytest.mark.parametrize("env", ["production", "staging"])
def test_deployments_refuse_weak_jwt_secret(monkeypatch, secret, env):
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("JWT_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY") as exc:
        load_settings()
    assert "at least 32 characters" in str(exc.value)


def test_production_refuses_the_default_secret_when_none_is_set(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY"):
        load_settings()


def test_production_accepts_a_long_random_secret(monkeypatch):
    secret = random_secret()
    assert len(secret) == 48
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", secret)
    settings = load_settings()
    assert settings.app_env is Environment.production
    assert settings.jwt_secret_key.get_secret_value() == secret
    assert secret not in repr(settings)


def test_production_check_also_applies_to_overrides():
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY"):
        load_settings(app_env="production")
    assert load_settings(app_env="production", jwt_secret_key=random_secret()).app_env == "production"


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_accept_the_default_secret(monkeypatch, env):
    monkeypatch.setenv("APP_ENV", env)
    settings = load_settings()
    assert settings.app_env == env
    assert settings.jwt_secret_key.get_secret_value() == DEV_SECRET


def test_refusing_to_start_does_not_print_other_secrets(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "short")
    monkeypatch.setenv("LLM_API_KEY", "sk-do-not-leak")
    with pytest.raises(ValidationError) as exc:
        load_settings()
    assert "do-not-leak" not in str(exc.value)


def test_every_setting_is_in_env_example_and_nothing_else():
    documented = set(
        re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.M)
    )
    fields = {name.upper() for name in Settings.model_fields}
    # Read by other code than Settings, or alternative names of a field.
    others = {"APP_ENV", "OPENAI_API_KEY", "LANGFUSE_BASE_URL", "MEM0_TELEMETRY"}
    assert fields - documented == set(), "settings missing from .env.example"
    assert documented - fields - others == set(), ".env.example names variables no setting reads"


# --- plain settings from the environment


def test_port_from_environment(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    assert load_settings().port == 9123


@pytest.mark.parametrize("port", ["0", "70000", "-1", "http"])
def test_out_of_range_port_is_rejected(monkeypatch, port):
    monkeypatch.setenv("PORT", port)
    with pytest.raises(ValidationError, match="port"):
        load_settings()


@pytest.mark.parametrize("variable", ["LLM_API_KEY", "OPENAI_API_KEY"])
def test_llm_key_from_either_variable(monkeypatch, variable):
    monkeypatch.setenv(variable, "sk-test-123")
    settings = load_settings()
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-test-123"
    assert settings.llm_configured
    assert "sk-test-123" not in repr(settings)


def test_llm_api_key_wins_over_openai_api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("LLM_API_KEY", "sk-llm")
    settings = load_settings()
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-llm"


def test_llm_not_configured_without_key_or_base_url():
    settings = load_settings()
    assert settings.llm_api_key is None
    assert settings.llm_base_url is None
    assert settings.llm_configured is False


def test_llm_configured_by_base_url_alone(monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9100/v1")
    settings = load_settings()
    assert settings.llm_base_url == "http://127.0.0.1:9100/v1"
    assert settings.llm_configured is True


def test_llm_configured_by_overrides():
    assert load_settings(llm_base_url="http://127.0.0.1:1/v1").llm_configured is True
    assert load_settings(llm_api_key="sk-x").llm_configured is True


def test_fallback_models_parse_from_json(monkeypatch):
    monkeypatch.setenv("LLM_FALLBACK_MODELS", '["a","b"]')
    assert load_settings().llm_fallback_models == ["a", "b"]


def test_fallback_models_default_to_none():
    assert load_settings().llm_fallback_models == []


def test_malformed_list_is_a_settings_error(monkeypatch):
    monkeypatch.setenv("LLM_FALLBACK_MODELS", "[not json")
    with pytest.raises(SettingsError, match="llm_fallback_models"):
        load_settings()


def test_overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "from-env")
    assert load_settings(llm_model="from-override").llm_model == "from-override"


# --- `.env` files: chosen by APP_ENV, read when load_settings() runs


def test_env_files_follow_app_env_and_project_root(monkeypatch, clean_env):
    # _env_files() reads APP_ENV and the module's PROJECT_ROOT each time it is called.
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("JWT_SECRET_KEY", random_secret())
    assert app.config._env_files() == (clean_env / ".env", clean_env / ".env.staging")
    monkeypatch.delenv("APP_ENV")
    assert app.config._env_files()[-1] == clean_env / ".env.development"


def test_env_file_for_app_env_is_read(monkeypatch, clean_env):
    (clean_env / ".env.staging").write_text("LLM_MODEL=from-file\nPORT=8111\n")
    (clean_env / ".env.production").write_text("LLM_MODEL=wrong-file\n")
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("JWT_SECRET_KEY", random_secret())
    settings = load_settings()
    assert settings.app_env is Environment.staging
    assert settings.llm_model == "from-file"
    assert settings.port == 8111


def test_env_specific_file_wins_over_plain_env_file(monkeypatch, clean_env):
    (clean_env / ".env").write_text("LLM_MODEL=from-dotenv\nPROJECT_NAME=Shared Name\n")
    (clean_env / ".env.staging").write_text("LLM_MODEL=from-file\n")
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("JWT_SECRET_KEY", random_secret())
    settings = load_settings()
    assert settings.llm_model == "from-file"
    assert settings.project_name == "Shared Name"


def test_real_environment_wins_over_env_file(monkeypatch, clean_env):
    (clean_env / ".env.staging").write_text("LLM_MODEL=from-file\n")
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("JWT_SECRET_KEY", random_secret())
    monkeypatch.setenv("LLM_MODEL", "from-env")
    assert load_settings().llm_model == "from-env"


def test_missing_env_files_are_fine(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("JWT_SECRET_KEY", random_secret())
    assert load_settings().llm_model == "gpt-4o-mini"


def test_production_secret_check_applies_to_env_file_values(monkeypatch, clean_env):
    (clean_env / ".env.production").write_text(f"JWT_SECRET_KEY={DEV_SECRET}\n")
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY"):
        load_settings()
    good = random_secret()
    (clean_env / ".env.production").write_text(f"JWT_SECRET_KEY={good}\n")
    assert load_settings().jwt_secret_key.get_secret_value() == good


# --- database URLs


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.example:5432/app",
        "postgres://u:p@db.example:5432/app",
        "postgresql+psycopg://u:p@db.example:5432/app",
        "postgresql+asyncpg://u:p@db.example:5432/app",
    ],
)
def test_normalise_url_accepts_postgres_spellings(url):
    urls = normalise_url(url)
    assert urls.sqlalchemy == "postgresql+psycopg://u:p@db.example:5432/app"
    assert urls.psycopg == "postgresql://u:p@db.example:5432/app"


@pytest.mark.parametrize(
    "url", ["mysql://u:p@db.example/app", "sqlite:///app.db", "", "db.example:5432/app", "POSTGRESQL"]
)
def test_normalise_url_rejects_other_databases(url):
    with pytest.raises(ValueError, match="PostgreSQL"):
        normalise_url(url)


def test_rates_parse_from_the_environment_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_CHAT", "5/second")
    monkeypatch.setenv("RATE_LIMIT_LOGIN", " 3 / hour ")
    s = load_settings()
    assert s.rate("chat") == Rate(5, 1) and s.rate("login") == Rate(3, 3600)
    assert s.rate("admin") == Rate(300, 60)  # a default
    for bad in ["5 per minute", "0/minute", "5/fortnight", "-1/minute", ""]:
        monkeypatch.setenv("RATE_LIMIT_CHAT", bad)
        with pytest.raises(ValidationError, match="COUNT/UNIT"):
            load_settings()


def test_null_turns_a_quota_off(monkeypatch):
    monkeypatch.setenv("QUOTA_MESSAGES_PER_DAY", "null")
    monkeypatch.setenv("QUOTA_TOKENS_PER_DAY", "0")
    s = load_settings()
    assert s.quota_messages_per_day is None and s.quota_tokens_per_day == 0


@pytest.mark.parametrize(
    "origins", ['["*"]', '["https://app.example.com/"]', '["null"]', '["https://a.example.com/path"]']
)
def test_cors_origins_must_be_explicit(monkeypatch, origins):
    monkeypatch.setenv("CORS_ORIGINS", origins)
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        load_settings()


def test_cors_origins_accept_hosts_ports_and_ipv6(monkeypatch):
    monkeypatch.setenv(
        "CORS_ORIGINS", '["https://app.example.com", "http://localhost:3000", "http://[::1]:8080"]'
    )
    assert len(load_settings().cors_origins) == 3


def test_the_test_settings_ignore_the_shell_and_env_files(monkeypatch, tmp_path, pg_url, fake_llm):
    from tests.conftest import make_settings

    # conftest removed every setting the shell had set before the tests started.
    assert [n for n in Settings.model_fields if n != "app_env" and n.upper() in os.environ] == []
    env_file = tmp_path / ".env"
    env_file.write_text("MEMORY_RECALL_LIMIT=49\nLLM_MODEL=from-a-developer-file\n")
    monkeypatch.setattr(app.config, "_env_files", lambda: (env_file,))
    assert load_settings().memory_recall_limit == 49  # the service reads it...
    settings = make_settings(pg_url, fake_llm)  # ...the tests do not
    assert (settings.memory_recall_limit, settings.llm_model) == (5, "fake-model")


def test_the_test_settings_ignore_settings_the_shell_had_set():
    # A developer's shell with a real key and settings of their own: what conftest sees when pytest starts.
    shell = {
        **os.environ,
        "MEMORY_RECALL_LIMIT": "49",
        "LLM_API_KEY": "sk-from-the-shell",
        "OPENAI_API_KEY": "sk-also-from-the-shell",
        "RATE_LIMIT_ENABLED": "true",
        "DATABASE_URL": "postgresql://u:p@the-shells-db/x",
    }
    code = (
        "import types, tests.conftest as c\n"
        "s = c.make_settings('postgresql://u:p@tests/t', types.SimpleNamespace(base_url='http://127.0.0.1:9/v1'))\n"
        "print(s.memory_recall_limit, s.llm_api_key, s.rate_limit_enabled, s.database_url)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        env=shell,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "None", "False", "postgresql://u:p@tests/t"]


def test_a_model_call_is_bounded_by_its_timeout_for_every_attempt():
    settings = Settings(_env_file=None, llm_request_timeout=300, llm_max_retries=2)  # type: ignore[call-arg]
    assert settings.llm_call_limit == 900  # the bound memory extraction and the evals wait for
