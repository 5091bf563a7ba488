-- 010: what the maintenance sweeps need.
--
-- last_dispatch_at: when the worker was last invoked for this job. A job is inserted right before its
-- first dispatch, so an insert trigger stamps it with created_at (no extra round trip for the start path).
-- The re-dispatch sweep invokes queued jobs that became available after their last dispatch (a retry
-- whose backoff elapsed) or whose last dispatch is older than a threshold (a lost invoke).
-- archived_at / job_archives: completed jobs past retention keep their row, outputs and variations
-- (personas reference them), while their timeline is folded into one archived document.

ALTER TABLE generation_jobs
    ADD COLUMN last_dispatch_at timestamptz,
    ADD COLUMN dispatch_count integer NOT NULL DEFAULT 0,
    ADD COLUMN archived_at timestamptz;

CREATE FUNCTION generation_jobs_stamp_dispatch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_dispatch_at := coalesce(NEW.last_dispatch_at, NEW.created_at);
    NEW.dispatch_count := greatest(NEW.dispatch_count, 1);
    RETURN NEW;
END
$$;

CREATE TRIGGER generation_jobs_stamp_dispatch
    BEFORE INSERT ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION generation_jobs_stamp_dispatch();

CREATE TABLE job_archives (
    job_id       uuid PRIMARY KEY REFERENCES generation_jobs (id) ON DELETE CASCADE,
    merchant_id  text NOT NULL,
    job          jsonb NOT NULL,
    events       jsonb NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_archives_merchant_idx ON job_archives (merchant_id, archived_at);

CREATE INDEX generation_jobs_archive_due_idx ON generation_jobs (completed_at)
    WHERE status = 'completed' AND archived_at IS NULL;
