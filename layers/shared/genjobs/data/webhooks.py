"""SQL of webhooks: endpoints (per merchant: another merchant's endpoint does not exist), the outbox's claim
and attempt functions (sql/090), and the attempts list (keyset on the attempt id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, LiteralString
from uuid import UUID

from genjobs.db import Database
from genjobs.db.outbox import note_webhooks_pending
from genjobs.models.webhooks import DeliveryAttempt, DueMessage, WebhookEndpoint
from genjobs.ports import WebhookResult

_ENDPOINT_COLUMNS: LiteralString = (
    "id, url, description, event_types, enabled, disabled_reason, disabled_at, "
    "CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END "
    "AS previous_secret_expires_at, created_at, updated_at"
)


def create_endpoint(db: Database, *, merchant_id: str, url: str, event_types: list[str] | None,
                    description: str | None, secret_encrypted: str, limit: int) -> WebhookEndpoint | None:
    """None when the merchant already has `limit` endpoints."""
    return db.fetch_one(
        """
        WITH merchant AS (
            INSERT INTO merchants (id) VALUES (%(merchant_id)s) ON CONFLICT (id) DO NOTHING
        )
        INSERT INTO webhook_endpoints (merchant_id, url, description, event_types, secret_encrypted)
        SELECT %(merchant_id)s, %(url)s, %(description)s, %(event_types)s, %(secret)s
         WHERE (SELECT count(*) FROM webhook_endpoints WHERE merchant_id = %(merchant_id)s) < %(limit)s
        RETURNING """ + _ENDPOINT_COLUMNS,
        {"merchant_id": merchant_id, "url": url, "description": description, "event_types": event_types,
         "secret": secret_encrypted, "limit": limit},
        row=WebhookEndpoint,
    )


def list_endpoints(db: Database, merchant_id: str) -> list[WebhookEndpoint]:
    return db.fetch_all(
        "SELECT " + _ENDPOINT_COLUMNS + " FROM webhook_endpoints WHERE merchant_id = %s "
        "ORDER BY created_at DESC, id DESC", (merchant_id,), row=WebhookEndpoint)


def find_endpoint(db: Database, merchant_id: str, endpoint_id: UUID) -> WebhookEndpoint | None:
    return db.fetch_one("SELECT " + _ENDPOINT_COLUMNS + " FROM webhook_endpoints WHERE id = %s AND merchant_id = %s",
                        (endpoint_id, merchant_id), row=WebhookEndpoint)


def update_endpoint(db: Database, merchant_id: str, endpoint_id: UUID, changes: dict[str, Any],
                    now: datetime) -> WebhookEndpoint | None:
    """Only the named fields change; `enabled: true` also clears the reason and the failure streak."""
    return db.fetch_one(
        """
        UPDATE webhook_endpoints
           SET url = CASE WHEN %(set_url)s THEN %(url)s ELSE url END,
               description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
               event_types = CASE WHEN %(set_events)s THEN %(events)s ELSE event_types END,
               enabled = coalesce(%(enabled)s, enabled),
               disabled_reason = CASE WHEN %(enabled)s THEN NULL WHEN %(enabled)s = false
                                      THEN coalesce(disabled_reason, 'Disabled by the merchant.')
                                      ELSE disabled_reason END,
               disabled_at = CASE WHEN %(enabled)s THEN NULL WHEN %(enabled)s = false AND enabled
                                  THEN %(now)s ELSE disabled_at END,
               failing_since = CASE WHEN %(enabled)s THEN NULL ELSE failing_since END,
               updated_at = %(now)s
         WHERE id = %(id)s AND merchant_id = %(merchant_id)s
        RETURNING """ + _ENDPOINT_COLUMNS,
        {"id": endpoint_id, "merchant_id": merchant_id, "now": now,
         "set_url": "url" in changes, "url": changes.get("url"),
         "set_description": "description" in changes, "description": changes.get("description"),
         "set_events": "events" in changes, "events": changes.get("events"),
         "enabled": changes.get("enabled")},
        row=WebhookEndpoint,
    )


def delete_endpoint(db: Database, merchant_id: str, endpoint_id: UUID) -> bool:
    """The endpoint, its pending messages and its attempts (ON DELETE CASCADE)."""
    return db.execute("DELETE FROM webhook_endpoints WHERE id = %s AND merchant_id = %s",
                      (endpoint_id, merchant_id)) > 0


def rotate_secret(db: Database, merchant_id: str, endpoint_id: UUID, *, secret_encrypted: str,
                  overlap: timedelta, now: datetime) -> datetime | None:
    """The new secret signs from now on; the old one keeps signing beside it for `overlap`. None: not found."""
    value = db.fetch_value(
        """
        UPDATE webhook_endpoints
           SET previous_secret_encrypted = secret_encrypted, previous_secret_expires_at = %(until)s,
               secret_encrypted = %(secret)s, updated_at = %(now)s
         WHERE id = %(id)s AND merchant_id = %(merchant_id)s
        RETURNING previous_secret_expires_at
        """,
        {"id": endpoint_id, "merchant_id": merchant_id, "secret": secret_encrypted, "until": now + overlap,
         "now": now},
    )
    return value if isinstance(value, datetime) else None


def enqueue_ping(db: Database, merchant_id: str, endpoint_id: UUID, data: dict[str, Any]) -> UUID | None:
    """A `ping` message for one endpoint (whatever its filter); None when the endpoint is not the merchant's."""
    from psycopg.types.json import Jsonb

    row = db.fetch_one(
        "INSERT INTO webhook_messages (endpoint_id, merchant_id, event_type, data) "
        "SELECT id, merchant_id, 'ping', %s FROM webhook_endpoints WHERE id = %s AND merchant_id = %s "
        "RETURNING id",
        (Jsonb(data), endpoint_id, merchant_id),
    )
    if row is None:
        return None
    note_webhooks_pending()
    return UUID(str(row["id"]))


def list_attempts(db: Database, merchant_id: str, endpoint_id: UUID, *, before_id: int | None,
                  limit: int) -> list[DeliveryAttempt] | None:
    """Attempts newest first, ids below `before_id`; None when the endpoint is not the merchant's."""
    rows = db.fetch_all(
        """
        WITH endpoint AS (
            SELECT id FROM webhook_endpoints WHERE id = %(endpoint_id)s AND merchant_id = %(merchant_id)s
        )
        SELECT endpoint.id AS endpoint_found, a.id, a.message_id, m.event_type, m.job_id, m.job_version, a.attempt,
               a.status_code, a.duration_ms, a.error, a.response_body, a.attempted_at, a.next_attempt_at,
               m.status AS message_status
          FROM endpoint
          LEFT JOIN LATERAL (
              SELECT * FROM webhook_attempts wa
               WHERE wa.endpoint_id = endpoint.id AND (%(before)s::bigint IS NULL OR wa.id < %(before)s::bigint)
               ORDER BY wa.id DESC
               LIMIT %(limit)s
          ) a ON true
          LEFT JOIN webhook_messages m ON m.id = a.message_id
         ORDER BY a.id DESC
        """,
        {"endpoint_id": endpoint_id, "merchant_id": merchant_id, "before": before_id, "limit": limit},
    )
    if not rows:
        return None
    return [DeliveryAttempt.model_validate(r) for r in rows if r["id"] is not None]


# -- delivery --------------------------------------------------------------------------------------------


def claim_due(db: Database, *, now: datetime, batch: int, lease: timedelta) -> list[DueMessage]:
    return db.fetch_all("SELECT * FROM genjobs_claim_webhooks_v1(%s, %s, %s)", (now, batch, lease), row=DueMessage)


def record_attempts(db: Database, results: Sequence[WebhookResult], now: datetime) -> list[str]:
    """Record a batch of attempts in one statement, one commit (genjobs_record_webhook_attempt_v1 per result);
    answers the outcomes. Calls go in endpoint order (the sort precedes volatile select-list calls), so two
    workers failing deliveries to the same endpoints lock them in the same order: no deadlock."""
    if not results:
        return []
    rows = db.fetch_all(
        """
        SELECT genjobs_record_webhook_attempt_v1(r.message_id, r.attempt, r.status_code, r.duration_ms, r.error,
                                                 r.response_body, %(now)s) ->> 'outcome' AS outcome
          FROM unnest(%(ids)s::uuid[], %(attempts)s::integer[], %(codes)s::integer[], %(durations)s::integer[],
                      %(errors)s::text[], %(bodies)s::text[])
               AS r(message_id, attempt, status_code, duration_ms, error, response_body)
          LEFT JOIN webhook_messages m ON m.id = r.message_id
         ORDER BY m.endpoint_id, r.message_id
        """,
        {"now": now, "ids": [UUID(r.message_id) for r in results], "attempts": [r.attempt for r in results],
         "codes": [r.status_code for r in results], "durations": [r.duration_ms for r in results],
         "errors": [r.error for r in results], "bodies": [r.response_body for r in results]},
    )
    return [str(row["outcome"]) for row in rows]


def due_count(db: Database, now: datetime) -> int:
    """Messages due now (the maintenance backstop asks for a delivery when there are any)."""
    return int(db.fetch_value(
        "SELECT count(*) FROM (SELECT 1 FROM webhook_messages WHERE status = 'pending' AND next_attempt_at <= %s "
        "LIMIT 1000) due", (now,)) or 0)

