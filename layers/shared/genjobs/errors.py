"""Domain errors.

Every error the service layer raises derives from `GenjobsError` and carries a stable machine-readable
`code`. How a code becomes an HTTP status lives in one place (`genjobs.http.errors`); services and data
access never think about HTTP.
"""

from __future__ import annotations

from typing import Any


class GenjobsError(Exception):
    """Base class of every error the domain reports to callers."""

    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(GenjobsError):
    code = "VALIDATION_ERROR"


class BadRequest(GenjobsError):
    code = "BAD_REQUEST"


class Unauthorized(GenjobsError):
    code = "UNAUTHORIZED"


class NotFound(GenjobsError):
    code = "NOT_FOUND"


class Conflict(GenjobsError):
    code = "CONFLICT"


class IllegalTransition(Conflict):
    """A job status change that the transition table does not allow."""

    code = "ILLEGAL_TRANSITION"


class StaleAttempt(Conflict):
    """A write from a job attempt that is no longer the current one (attempt fencing)."""

    code = "STALE_ATTEMPT"


class RetryableRejection(GenjobsError):
    """A rejection that clears by itself after `retry_after_seconds`."""

    def __init__(
        self, message: str, *, retry_after_seconds: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        self.details.setdefault("retry_after_seconds", self.retry_after_seconds)


class RateLimited(RetryableRejection):
    code = "RATE_LIMITED"


class CooldownActive(RetryableRejection):
    code = "COOLDOWN_ACTIVE"


class BudgetExceeded(GenjobsError):
    code = "BUDGET_EXCEEDED"


class DatabaseUnavailable(GenjobsError):
    """The database cannot be reached (connect failed or the connection was lost)."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str = "The database is unavailable; retry shortly.", *,
                 retry_after_seconds: int = 5, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_seconds = retry_after_seconds


class DatabaseTimeout(DatabaseUnavailable):
    """A statement ran past the database's statement_timeout."""


class MigrationError(GenjobsError):
    code = "MIGRATION_ERROR"
