-- 090: webhooks — endpoints, the transactional outbox of events, and every delivery attempt.
--
-- The outbox. Triggers on generation_jobs and media_outputs write one webhook_messages row per matching
-- endpoint of the job's merchant, in the statement that changed the job (BEFORE row triggers, named to
-- fire after the other BEFORE triggers, so NEW carries the final version; and so the writer's own
-- statement, RETURNING included, already sees the pending signal below), so an event commits or rolls back
-- with its change: none invented for a change that rolled back, none lost for one that committed. The
-- message id is the `webhook-id` of every attempt. Each row carries a snapshot of the job as GET /jobs/{id}
-- shows it and the job's `version`, so receivers can order and de-duplicate.
--
-- The hot path. For a merchant without endpoints the triggers cost one index probe
-- (webhook_endpoints_merchant_idx) inside the statement the writer sends anyway: no extra round trip,
-- nothing written. When messages were written, the trigger sets the transaction-local setting
-- `genjobs.webhooks_pending` (set_config(..., true): it ends with the transaction, so nothing stays on a
-- pooled connection); the writer reads it in the same statement (genjobs.db.outbox) and asks for a
-- prompt delivery. The maintenance sweep is the backstop.
--
-- The rules that live here, once:
--   genjobs_webhook_event_type_v1     which job change is which event (job.queued ... job.canceled)
--   genjobs_webhook_retry_delay_v1    the retry schedule (exponential, with jitter, > 24 h in total)
--   genjobs_claim_webhooks_v1         due messages for one delivery worker (lease, SKIP LOCKED)
--   genjobs_record_webhook_attempt_v1 one attempt's result: delivered, retry later, or failed; 410 and
--                                     5 days of failures disable the endpoint

CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id                 text NOT NULL REFERENCES merchants (id),
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                 text CHECK (length(description) <= 500),
    -- NULL: every event type
    event_types                 text[],
    -- The signing secret, encrypted (Fernet: AES-128-CBC + HMAC-SHA256) with the key from configuration
    -- (WEBHOOK_SECRET_KEY / WEBHOOK_SECRET_KEY_ARN): a dump of this table does not reveal it.
    secret_encrypted            text NOT NULL,
    -- after a rotation the old secret keeps signing beside the new one until previous_secret_expires_at
    previous_secret_encrypted   text,
    previous_secret_expires_at  timestamptz,
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text,
    disabled_at                 timestamptz,
    -- the first failed attempt since the last success: 5 days of failures disable the endpoint
    failing_since               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_merchant_idx ON webhook_endpoints (merchant_id, created_at DESC, id DESC);

CREATE TABLE webhook_messages (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    merchant_id      text NOT NULL,
    event_type       text NOT NULL,
    job_id           uuid,
    job_version      bigint,
    data             jsonb NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- when the next attempt is due; a claimed message is pushed to the end of its lease, so a worker that
    -- died mid-batch leaves it due again once the lease is over
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id);

CREATE TABLE webhook_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL,
    merchant_id      text NOT NULL,
    attempt          integer NOT NULL,
    status_code      integer,
    duration_ms      integer,
    error            text,
    -- at most 1 KB of what the receiver answered
    response_body    text CHECK (length(response_body) <= 1024),
    attempted_at     timestamptz NOT NULL,
    -- NULL when the message was delivered or gave up
    next_attempt_at  timestamptz,
    -- a result reported twice (an SQS redelivery) is recorded once
    UNIQUE (message_id, attempt)
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id DESC);

-- The job as GET /jobs/{id} shows it (genjobs.data.jobs.JOB_COLUMNS; the model validates it on delivery).
CREATE FUNCTION genjobs_webhook_job_v1(p_job generation_jobs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    -- with the job's files, as GET /jobs/{id} shows them (sql/061)
    SELECT jsonb_object_agg(e.key, e.value) || jsonb_build_object('outputs', genjobs_job_outputs_v1(p_job.id))
      FROM jsonb_each(to_jsonb(p_job)) AS e
     WHERE e.key IN ('id', 'merchant_id', 'persona_id', 'job_type', 'status', 'current_step', 'progress',
                     'variation_count', 'states_requested', 'states_generated', 'variation_urls', 'cost_usd',
                     'estimated_cost_usd', 'model_id', 'error_code', 'error_message', 'retry_count',
                     'max_retries', 'attempt', 'created_at', 'started_at', 'completed_at', 'updated_at',
                     'version')
$$;

-- Which event a change of a job is; NULL when the change is no event (a lease renewal, metadata).
CREATE FUNCTION genjobs_webhook_event_type_v1(p_op text, p_old generation_jobs, p_new generation_jobs) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_op = 'INSERT' THEN 'job.queued'
        WHEN p_new.version = p_old.version THEN NULL
        WHEN p_new.status IS DISTINCT FROM p_old.status THEN
            CASE p_new.status WHEN 'queued' THEN 'job.queued'
                              WHEN 'processing' THEN 'job.started'
                              WHEN 'generating_videos' THEN 'job.progress'
                              WHEN 'completed' THEN 'job.completed'
                              WHEN 'failed' THEN 'job.failed'
                              WHEN 'canceled' THEN 'job.canceled' END
        WHEN p_new.progress IS DISTINCT FROM p_old.progress
             OR p_new.current_step IS DISTINCT FROM p_old.current_step
             OR p_new.states_generated IS DISTINCT FROM p_old.states_generated THEN 'job.progress'
    END
$$;

-- One message per enabled endpoint of the merchant whose filter takes the event; tells the writer.
CREATE FUNCTION genjobs_enqueue_webhooks_v1(p_job generation_jobs, p_event_type text, p_extra jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO webhook_messages (endpoint_id, merchant_id, event_type, job_id, job_version, data)
    SELECT e.id, p_job.merchant_id, p_event_type, p_job.id, p_job.version,
           jsonb_build_object('job', genjobs_webhook_job_v1(p_job)) || coalesce(p_extra, '{}'::jsonb)
      FROM webhook_endpoints e
     WHERE e.merchant_id = p_job.merchant_id AND e.enabled
       AND (e.event_types IS NULL OR p_event_type = ANY (e.event_types));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM set_config('genjobs.webhooks_pending', 'on', true);
    END IF;
    RETURN v_count;
END
$$;

CREATE FUNCTION generation_jobs_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    -- the one probe a merchant without endpoints pays (an index-only lookup, inside the writer's statement)
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.merchant_id = NEW.merchant_id) THEN
        RETURN NEW;
    END IF;
    v_type := genjobs_webhook_event_type_v1(TG_OP, CASE WHEN TG_OP = 'UPDATE' THEN OLD END, NEW);
    IF v_type IS NOT NULL THEN
        PERFORM genjobs_enqueue_webhooks_v1(NEW, v_type, NULL);
    END IF;
    RETURN NEW;
END
$$;

-- after generation_jobs_guard and generation_jobs_stamp_dispatch (same-kind triggers fire by name)
CREATE TRIGGER generation_jobs_webhooks
    BEFORE INSERT OR UPDATE ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION generation_jobs_webhooks();

CREATE FUNCTION media_outputs_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_job generation_jobs;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.merchant_id = NEW.merchant_id) THEN
        RETURN NEW;
    END IF;
    SELECT * INTO v_job FROM generation_jobs WHERE id = NEW.job_id;
    IF FOUND THEN
        PERFORM genjobs_enqueue_webhooks_v1(v_job, 'job.output', jsonb_build_object('output', jsonb_strip_nulls(
            jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'state', NEW.state, 'url', NEW.url,
                               'content_type', NEW.content_type))));
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER media_outputs_webhooks
    BEFORE INSERT ON media_outputs
    FOR EACH ROW EXECUTE FUNCTION media_outputs_webhooks();

-- The retry schedule: the delay after failed attempt n (1-based), with ±20 % jitter so that receivers
-- coming back from an outage are not hit by every sender at once. Base delays 5 s, 5 min, 30 min, 2 h, 5 h,
-- 10 h, 14 h: 31 h 35 min in total, at least 25 h 16 min with the jitter, so retries span more than a day.
-- NULL after the 8th attempt: the message has failed.
CREATE FUNCTION genjobs_webhook_retry_delay_v1(p_attempt integer) RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT (ARRAY[interval '5 seconds', interval '5 minutes', interval '30 minutes', interval '2 hours',
                  interval '5 hours', interval '10 hours', interval '14 hours'])[p_attempt]
           * (0.8 + 0.4 * random())
$$;

-- Due messages for one delivery worker: attempts + 1, pushed to the end of the lease (a worker that dies
-- leaves them due again then), with what signing needs. SKIP LOCKED: concurrent workers share the work.
CREATE FUNCTION genjobs_claim_webhooks_v1(p_now timestamptz, p_batch integer, p_lease interval)
RETURNS TABLE (id uuid, endpoint_id uuid, merchant_id text, event_type text, job_id uuid, job_version bigint,
               data jsonb, occurred_at timestamptz, attempt integer, url text, secret_encrypted text,
               previous_secret_encrypted text)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT m.id FROM webhook_messages m
          JOIN webhook_endpoints e ON e.id = m.endpoint_id
         -- greatest(): a message is stamped with the database's now(); a caller's clock a little behind it
         -- (another host) must not leave a fresh event for the sweep
         WHERE m.status = 'pending' AND m.next_attempt_at <= greatest(p_now, now()) AND e.enabled
         ORDER BY m.next_attempt_at
         LIMIT p_batch
         FOR UPDATE OF m SKIP LOCKED
    ), claimed AS (
        UPDATE webhook_messages m
           SET attempts = m.attempts + 1, next_attempt_at = p_now + p_lease
          FROM due WHERE m.id = due.id
        RETURNING m.*
    )
    SELECT c.id, c.endpoint_id, c.merchant_id, c.event_type, c.job_id, c.job_version, c.data, c.occurred_at,
           c.attempts, e.url, e.secret_encrypted,
           CASE WHEN e.previous_secret_expires_at > p_now THEN e.previous_secret_encrypted END
      FROM claimed c JOIN webhook_endpoints e ON e.id = c.endpoint_id
     ORDER BY c.job_id, c.job_version
$$;

-- One attempt's result. 2xx: delivered. 410: the endpoint is disabled at once. Otherwise retried on the
-- schedule above until it ends (then failed); an endpoint failing for 5 days is disabled with the reason.
-- A result reported twice (the same message and attempt) changes nothing the second time.
CREATE FUNCTION genjobs_record_webhook_attempt_v1(
    p_message_id uuid, p_attempt integer, p_status_code integer, p_duration_ms integer, p_error text,
    p_response_body text, p_now timestamptz
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_message webhook_messages;
    v_delivered boolean := p_status_code BETWEEN 200 AND 299;
    v_next timestamptz;
    v_delay interval;
    v_disable text;
    v_failing_since timestamptz;
BEGIN
    SELECT * INTO v_message FROM webhook_messages WHERE id = p_message_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.message_id = p_message_id AND a.attempt = p_attempt)
       OR v_message.status <> 'pending' THEN
        RETURN jsonb_build_object('outcome', 'duplicate');
    END IF;
    IF NOT v_delivered AND p_status_code IS DISTINCT FROM 410 THEN
        v_delay := genjobs_webhook_retry_delay_v1(p_attempt);
        v_next := p_now + v_delay;
    END IF;
    INSERT INTO webhook_attempts (message_id, endpoint_id, merchant_id, attempt, status_code, duration_ms, error,
                                  response_body, attempted_at, next_attempt_at)
    VALUES (p_message_id, v_message.endpoint_id, v_message.merchant_id, p_attempt, p_status_code, p_duration_ms,
            left(p_error, 1000), left(p_response_body, 1024), p_now, v_next);
    UPDATE webhook_messages
       SET status = CASE WHEN v_delivered THEN 'delivered' WHEN v_next IS NULL THEN 'failed' ELSE 'pending' END,
           delivered_at = CASE WHEN v_delivered THEN p_now END,
           next_attempt_at = coalesce(v_next, next_attempt_at)
     WHERE id = p_message_id;
    IF v_delivered THEN
        UPDATE webhook_endpoints SET failing_since = NULL WHERE id = v_message.endpoint_id AND failing_since IS NOT NULL;
        RETURN jsonb_build_object('outcome', 'delivered');
    END IF;
    UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, p_now)
     WHERE id = v_message.endpoint_id
    RETURNING failing_since INTO v_failing_since;
    IF p_status_code = 410 THEN
        v_disable := 'The receiver answered 410 Gone.';
    ELSIF v_failing_since <= p_now - interval '5 days' THEN
        v_disable := format('Every delivery failed for 5 days (since %s).', v_failing_since);
    END IF;
    IF v_disable IS NOT NULL THEN
        UPDATE webhook_endpoints
           SET enabled = false, disabled_reason = v_disable, disabled_at = p_now, updated_at = p_now
         WHERE id = v_message.endpoint_id AND enabled;
        RETURN jsonb_build_object('outcome', 'endpoint_disabled', 'reason', v_disable);
    END IF;
    RETURN jsonb_build_object('outcome', CASE WHEN v_next IS NULL THEN 'failed' ELSE 'retrying' END,
                              'next_attempt_at', v_next);
END
$$;
