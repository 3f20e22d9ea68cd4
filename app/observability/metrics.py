"""Prometheus metrics: one definition per metric, bounded labels, exposition in one or many processes.

With PROMETHEUS_MULTIPROC_DIR in the environment (gunicorn with several workers), prometheus-client keeps
every worker's values in files there and `/metrics` sums them; otherwise values live in this process.
"""

from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

# `_created` samples would double every scrape, and nothing reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- HTTP (labels: method, route template or UNMATCHED_ROUTE, status code)
UNMATCHED_ROUTE = "<unmatched>"
HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response body (a whole stream for SSE)",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# Incremented by the rate limiter; `limit` is the name of the limit that refused (a fixed set in code).
HTTP_RATE_LIMITED = Counter("http_rate_limited", "Requests refused by a rate limit", ["limit"])

# --- the agent (labels: configured model names, registered tool names, graph node names)
LLM_LATENCY = Histogram(
    "agent_llm_latency_seconds",
    "One model call, from request to the last token",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
LLM_TTFT = Histogram(
    "agent_llm_time_to_first_token_seconds",
    "Streamed model calls: time to the first content or tool-call chunk",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
LLM_TOKENS = Counter(
    "agent_llm_tokens", "Tokens the model read (input) and wrote (output)", ["model", "direction"]
)
LLM_ERRORS = Counter("agent_llm_errors", "Model calls that failed", ["model", "error_type"])
TOOL_CALLS = Counter("agent_tool_calls", "Tool runs", ["tool"])
TOOL_ERRORS = Counter("agent_tool_errors", "Tool runs that raised", ["tool"])
TOOL_LATENCY = Histogram(
    "agent_tool_latency_seconds",
    "One tool run",
    ["tool"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30),
)
NODE_LATENCY = Histogram(
    "agent_node_latency_seconds",
    "One run of a graph node",
    ["node"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACTIVE_STREAMS = Gauge("agent_active_streams", "SSE chat streams open now", multiprocess_mode="livesum")

# --- long-term memory
MEMORY_RECALL_LATENCY = Histogram(
    "agent_memory_recall_latency_seconds",
    "Embedding the user's message and finding their nearest memories",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MEMORY_RECALL_FAILURES = Counter("agent_memory_recall_failures", "Recalls that raised")
MEMORY_EXTRACTION_LATENCY = Histogram(
    "agent_memory_extraction_latency_seconds",
    "Extracting and storing facts after a turn (in the background)",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MEMORY_EXTRACTION_FAILURES = Counter("agent_memory_extraction_failures", "Extractions that raised")
MEMORY_EXTRACTION_DROPPED = Counter(
    "agent_memory_extraction_dropped", "Extractions not queued: MEMORY_MAX_PENDING jobs were waiting"
)
# The durable job queue, read from PostgreSQL by every consumer: the same numbers in every process.
MEMORY_JOBS_QUEUED = Gauge(
    "agent_memory_jobs_queued", "Extraction jobs waiting or in progress", multiprocess_mode="livemax"
)
MEMORY_JOBS_FAILED = Gauge(
    "agent_memory_jobs_failed", "Extraction jobs that used up their attempts", multiprocess_mode="livemax"
)
MEMORY_JOBS_OLDEST = Gauge(
    "agent_memory_jobs_oldest_age_seconds",
    "Age of the oldest unfinished extraction job",
    multiprocess_mode="livemax",
)
MEMORY_JOBS_RUNNING = Gauge(
    "agent_memory_jobs_running", "Extraction jobs being worked on now", multiprocess_mode="livesum"
)


def count_rate_limited(limit: str) -> None:
    HTTP_RATE_LIMITED.labels(limit).inc()


def multiprocess_enabled() -> bool:
    """prometheus-client chose its value class from the environment when first imported."""
    return values.ValueClass is not values.MutexValue


def check_multiprocess(configured_dir: Path | None) -> None:
    """Fail at start-up when Settings and prometheus-client disagree (a .env file is not the environment)."""
    if (configured_dir is not None) != multiprocess_enabled():
        raise RuntimeError(
            "PROMETHEUS_MULTIPROC_DIR must be set in the process environment before start-up, not only in a"
            " .env file: prometheus-client reads it when first imported"
        )


def exposition() -> tuple[bytes, str]:
    """The text format for a scrape: this process's registry, or every worker's files."""
    if not multiprocess_enabled():
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
