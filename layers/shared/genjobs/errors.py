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
        return error_document(self.code, self.message, self.details)


def error_document(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inside of every error answer, HTTP (`{"error": ...}`) or direct invoke (`{"ok": false, "error": ...}`)."""
    return {"code": code, "message": message, "details": details or {}}


class ValidationFailed(GenjobsError):
    code = "VALIDATION_ERROR"


class BadRequest(GenjobsError):
    code = "BAD_REQUEST"


class Unauthorized(GenjobsError):
    code = "UNAUTHORIZED"


class Forbidden(GenjobsError):
    """An authenticated caller without the scope a route needs (the operator routes)."""

    code = "FORBIDDEN"


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


class NoModelConfigured(GenjobsError):
    """No enabled default model of the kind a job needs: an operator's configuration, not an outage."""

    code = "NO_MODEL_CONFIGURED"


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


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """pydantic's (or powertools') validation errors as the `details.errors` of a VALIDATION_ERROR."""
    return [{"location": [str(part) for part in err.get("loc", ())], "message": err.get("msg", "invalid value"),
             "type": err.get("type")} for err in errors]
