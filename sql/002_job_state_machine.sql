-- 002: the job status transition table, enforced by the database for every writer.
--
-- Every UPDATE of generation_jobs goes through generation_jobs_guard():
--   * a status change not listed in job_status_transitions raises SQLSTATE 'GJ409'
--     (DETAIL is JSON {"from": ..., "to": ...}); the service layer maps it to 409 ILLEGAL_TRANSITION;
--   * a real change bumps `version` (what long-polls watch) and `updated_at`; an UPDATE that changes
--     nothing changes neither;
--   * started_at / completed_at are stamped on entering processing / a terminal status.
-- AFTER triggers write the timeline (job_events) and NOTIFY 'job_events', in the same statement as the
-- change, so no writer can forget either and no extra round trip is paid.

CREATE TABLE job_status_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

INSERT INTO job_status_transitions (from_status, to_status) VALUES
    ('queued', 'processing'),
    ('queued', 'failed'),             -- retries exhausted before a claim, or refused at dispatch
    ('queued', 'canceled'),
    ('processing', 'generating_videos'),
    ('processing', 'completed'),
    ('processing', 'failed'),
    ('processing', 'canceled'),
    ('processing', 'queued'),         -- retry after a retryable provider error, or lease rescue
    ('generating_videos', 'completed'),
    ('generating_videos', 'failed'),
    ('generating_videos', 'canceled'),
    ('generating_videos', 'queued');  -- lease rescue

CREATE FUNCTION generation_jobs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT EXISTS (SELECT 1 FROM job_status_transitions t
                       WHERE t.from_status = OLD.status AND t.to_status = NEW.status) THEN
            RAISE EXCEPTION 'illegal job status transition % -> %', OLD.status, NEW.status
                USING ERRCODE = 'GJ409',
                      DETAIL = json_build_object('from', OLD.status, 'to', NEW.status, 'job_id', OLD.id)::text;
        END IF;
        IF NEW.status = 'processing' AND NEW.started_at IS NULL THEN
            NEW.started_at := now();
        END IF;
        IF NEW.status IN ('completed', 'failed', 'canceled') THEN
            NEW.completed_at := coalesce(NEW.completed_at, now());
            NEW.lease_expires_at := NULL;
        END IF;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER generation_jobs_guard
    BEFORE UPDATE ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION generation_jobs_guard();

CREATE FUNCTION generation_jobs_timeline() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_events (job_id, merchant_id, event_type, status, current_step, progress, attempt, details)
        VALUES (NEW.id, NEW.merchant_id, 'created', NEW.status, NEW.current_step, NEW.progress, NEW.attempt,
                jsonb_build_object('job_type', NEW.job_type));
    ELSE
        IF NEW.version = OLD.version THEN
            RETURN NULL;  -- nothing changed
        END IF;
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            INSERT INTO job_events (job_id, merchant_id, event_type, status, current_step, progress, attempt, details)
            VALUES (NEW.id, NEW.merchant_id, 'status_changed', NEW.status, NEW.current_step, NEW.progress,
                    NEW.attempt,
                    jsonb_strip_nulls(jsonb_build_object('from', OLD.status, 'error_code', NEW.error_code,
                                                         'error_message', NEW.error_message,
                                                         'retry_count', NEW.retry_count)));
        ELSIF NEW.current_step IS DISTINCT FROM OLD.current_step THEN
            INSERT INTO job_events (job_id, merchant_id, event_type, status, current_step, progress, attempt)
            VALUES (NEW.id, NEW.merchant_id, 'step_changed', NEW.status, NEW.current_step, NEW.progress,
                    NEW.attempt);
        END IF;
    END IF;
    PERFORM pg_notify('job_events', json_build_object(
        'job_id', NEW.id, 'merchant_id', NEW.merchant_id, 'persona_id', NEW.persona_id,
        'status', NEW.status, 'progress', NEW.progress, 'version', NEW.version)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER generation_jobs_timeline
    AFTER INSERT OR UPDATE ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION generation_jobs_timeline();

-- every generated file appears on its job's timeline
CREATE FUNCTION media_outputs_timeline() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, merchant_id, event_type, details)
    VALUES (NEW.job_id, NEW.merchant_id, 'output_generated',
            jsonb_strip_nulls(jsonb_build_object('media_output_id', NEW.id, 'kind', NEW.kind,
                                                 'state', NEW.state, 'url', NEW.url)));
    RETURN NULL;
END
$$;

CREATE TRIGGER media_outputs_timeline
    AFTER INSERT ON media_outputs
    FOR EACH ROW EXECUTE FUNCTION media_outputs_timeline();

-- personas: version and updated_at on every real change
CREATE FUNCTION personas_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER personas_touch
    BEFORE UPDATE ON personas
    FOR EACH ROW EXECUTE FUNCTION personas_touch();
