"""One error type for the whole service; the API layer renders it as {"error", "detail"}."""

import math
from typing import Any


class AppError(Exception):
    status_code = 400
    error = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers

    def body_detail(self) -> Any:
        """What the response's "detail" holds."""
        return self.detail


class NotFoundError(AppError):
    status_code = 404
    error = "not_found"


class ConflictError(AppError):
    status_code = 409
    error = "conflict"


class UnauthorizedError(AppError):
    status_code = 401
    error = "unauthorized"

    def __init__(self, detail: str = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(AppError):
    status_code = 403
    error = "forbidden"


class CsrfError(ForbiddenError):
    error = "csrf_failed"


class ValidationFailedError(AppError):
    """Input the schema let through but the service refuses; shaped like FastAPI's own 422s, so
    every 422 of the API reads the same: a list of {loc, msg, type}."""

    status_code = 422
    error = "validation_error"

    def __init__(self, detail: str, *, loc: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.loc = loc

    def body_detail(self) -> Any:
        return [{"loc": list(self.loc), "msg": self.detail, "type": "value_error"}]


class ThreadBusyError(ConflictError):
    error = "thread_busy"

    def __init__(self) -> None:
        super().__init__(
            "This session is still answering a previous message; wait for it to finish and try again.",
            headers={"Retry-After": "1"},
        )


class TurnChangedError(ConflictError):
    error = "turn_changed"

    def __init__(self) -> None:
        super().__init__(
            "The session's last turn is no longer the one this request meant to replace; reload it first."
        )


class NoTurnToReplaceError(ConflictError):
    error = "no_turn_to_replace"

    def __init__(self) -> None:
        super().__init__(
            "This session has no completed turn to replace; send a message without replace_last_turn."
        )


class RunNotWaitingError(ConflictError):
    error = "run_not_waiting"

    def __init__(self) -> None:
        super().__init__(
            "This run is not waiting any more: it was cancelled, it expired, or it already went on."
        )


class QueueFullError(ConflictError):
    error = "queue_full"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This session already has {limit} messages waiting for the current run; wait for one to start.",
            headers={"Retry-After": "1"},
        )


class RunCancelledError(ConflictError):
    """A turn stopped by a cancel, from this or another device, or by a newer message."""

    error = "run_cancelled"

    def __init__(self) -> None:
        super().__init__("The run was cancelled.")


class TurnNotFoundError(NotFoundError):
    error = "turn_not_found"

    def __init__(self) -> None:
        super().__init__("This session has no turn with that id; read its history for the turn ids.")


class LLMUnavailableError(AppError):
    status_code = 503
    error = "llm_unavailable"


class LLMTimeoutError(AppError):
    status_code = 504
    error = "llm_timeout"


class AgentError(AppError):
    status_code = 502
    error = "agent_error"


class MemoryDisabledError(AppError):
    status_code = 404
    error = "memory_disabled"

    def __init__(self) -> None:
        super().__init__("Long-term memory is turned off on this server (MEMORY_ENABLED=false).")


class TooManyRequestsError(AppError):
    status_code = 429
    error = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class LoginLockedError(TooManyRequestsError):
    error = "login_locked"


class QuotaExceededError(TooManyRequestsError):
    error = "quota_exceeded"


class TooManyStreamsError(TooManyRequestsError):
    error = "too_many_streams"


class ServiceUnavailableError(AppError):
    status_code = 503
    error = "service_unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class DatabaseUnavailableError(ServiceUnavailableError):
    error = "database_unavailable"

    def __init__(self) -> None:
        super().__init__("The database cannot be reached right now; please try again shortly.")


class ShuttingDownError(ServiceUnavailableError):
    error = "shutting_down"

    def __init__(self) -> None:
        super().__init__(
            "This server is restarting and takes no new messages; send it again in a moment.", retry_after=2
        )
