"""The evals' own settings (EVAL_*): the judge, the cache, the evals database, Langfuse's read API."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import config
from app.config import PROJECT_ROOT


class EvalSettings(BaseSettings):
    # Files are passed by load_eval_settings(), as app.config.load_settings() passes the service's.
    model_config = SettingsConfigDict(
        env_prefix="EVAL_",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # --- the judge: any OpenAI-compatible model, configured apart from the agent's
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key: SecretStr | None = None
    judge_temperature: float = Field(default=0.0, ge=0, le=2)
    judge_timeout: float = Field(default=60.0, gt=0)
    judge_max_retries: int = Field(default=3, ge=0, le=10)
    judge_retry_delay: float = Field(default=1.0, ge=0)  # doubled after each failed attempt, jittered
    judge_concurrency: int = Field(default=4, ge=1, le=64)
    # response_format=json_object; OpenAI and vLLM take it, some servers refuse it.
    judge_json_mode: bool = False
    cache_dir: Path = PROJECT_ROOT / ".data" / "evals" / "judge-cache"

    # --- dataset mode: never the service's own database, so eval users never land there
    database_url: str = ""  # empty: an embedded PostgreSQL under DATA_DIR
    data_dir: Path = PROJECT_ROOT / ".data" / "evals"
    case_concurrency: int = Field(default=2, ge=1, le=64)
    reports_dir: Path = PROJECT_ROOT / ".data" / "evals" / "reports"

    # --- trace mode: Langfuse's public API, with the same keys the service traces with
    langfuse_public_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("EVAL_LANGFUSE_PUBLIC_KEY", "LANGFUSE_PUBLIC_KEY")
    )
    langfuse_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("EVAL_LANGFUSE_SECRET_KEY", "LANGFUSE_SECRET_KEY")
    )
    langfuse_host: str = Field(
        default="https://cloud.langfuse.com",
        validation_alias=AliasChoices("EVAL_LANGFUSE_HOST", "LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    )
    langfuse_timeout: float = Field(default=30.0, gt=0)

    @field_validator("judge_base_url", "langfuse_host")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # Not echoed back: a URL may carry credentials.
        parts = urlsplit(value) if value is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be an http(s) URL like https://api.example.com/v1")
        return value

    @property
    def judge_configured(self) -> bool:
        return bool(self.judge_base_url and self.judge_model)


def load_eval_settings(**overrides: Any) -> EvalSettings:
    """From the environment, then `.env` and `.env.<APP_ENV>`: the files the service reads."""
    # Looked up on the module at call time, so that tests can point it elsewhere.
    return EvalSettings(_env_file=config._env_files(), **overrides)
