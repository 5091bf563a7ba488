-- 070: commits that no longer queue on the notify lock, a shorter timeline and HOT-friendly job updates
-- (issue 18). Measured by `make bench PART=lifecycle` (server CPU, WAL bytes and HOT share per job).
--
-- 1. No NOTIFY. generation_jobs_timeline() (002) ended in pg_notify('job_events', ...). Nothing listens:
--    request paths reach PostgreSQL through RDS Proxy, where LISTEN would pin the session, and the long-poll
--    reads the job instead (genjobs.services.jobs). A notifying transaction takes the cluster-wide notify
--    lock from pre-commit until its WAL flush, so every job write queued behind every other one and commits
--    could not share a flush. The function body is replaced with CREATE OR REPLACE; the trigger itself (and
--    any other trigger on generation_jobs) is left as it is. A future wake-up signal (webhooks) must not
--    come back as a NOTIFY in this trigger.
--
-- 2. One timeline row per image instead of two. A generated image is recorded by one statement
--    (genjobs_record_variation_v1): the job's UPDATE writes a step_changed row (status, step, progress,
--    attempt) and the media_outputs INSERT right after it wrote a separate output_generated row (the
--    output's id, kind, state and URL). The second row added no moment and no fact the first could not
--    hold: media_outputs_timeline() now folds the output into the step_changed row the same transaction
--    just wrote for that job (details.output = {media_output_id, kind, state, url}). An output that arrives
--    without a step change in its transaction (a video recorded from S3, which inserts the output before
--    the job update) still gets its own output_generated row, as before. A variations job: 9 rows -> 6.
--    CREATE OR REPLACE of the function body only; its trigger (002) is unchanged.
--
-- 3. HOT updates. An UPDATE can only be heap-only (no index entry written, the old version pruned on the
--    page) when it changes no column any index names, in its key or its WHERE, and the page has room.
--    generation_jobs_active_lease_idx had lease_expires_at as its key, and every progress write renews the
--    lease: 0 % HOT. It is replaced by an index on started_at, which a running job never changes, with
--    the same predicate: the rescue sweep scans the running jobs (as many as workers run at once) and
--    filters on the lease. Status changes stay non-HOT (status is in the partial indexes' predicates, on
--    purpose). fillfactor leaves room on each page for the updated versions of the rows it holds; it
--    applies to pages written from now on.

CREATE OR REPLACE FUNCTION generation_jobs_timeline() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_events (job_id, merchant_id, event_type, status, current_step, progress, attempt, details)
        VALUES (NEW.id, NEW.merchant_id, 'created', NEW.status, NEW.current_step, NEW.progress, NEW.attempt,
                jsonb_build_object('job_type', NEW.job_type));
    ELSIF NEW.version = OLD.version THEN
        RETURN NULL;  -- nothing changed
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
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
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION media_outputs_timeline() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_output jsonb := jsonb_strip_nulls(jsonb_build_object('media_output_id', NEW.id, 'kind', NEW.kind,
                                                           'state', NEW.state, 'url', NEW.url));
BEGIN
    -- the job's newest row, when this transaction wrote it as a step change without an output yet
    UPDATE job_events e
       SET details = e.details || jsonb_build_object('output', v_output)
     WHERE e.id = (SELECT max(l.id) FROM job_events l WHERE l.job_id = NEW.job_id)
       AND e.event_type = 'step_changed'
       AND NOT e.details ? 'output'
       AND e.xmin::text::bigint = txid_current() % 4294967296;
    IF NOT FOUND THEN
        INSERT INTO job_events (job_id, merchant_id, event_type, details)
        VALUES (NEW.job_id, NEW.merchant_id, 'output_generated', v_output);
    END IF;
    RETURN NULL;
END
$$;

DROP INDEX generation_jobs_active_lease_idx;
CREATE INDEX generation_jobs_running_idx ON generation_jobs (started_at)
    WHERE status IN ('processing', 'generating_videos');

ALTER TABLE generation_jobs SET (fillfactor = 70);
ALTER TABLE personas SET (fillfactor = 80);
