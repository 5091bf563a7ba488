-- 014: leases renewed by progress (issue 12, fault 2).
--
-- A worker that reports progress or delivers a state is alive, yet its lease ran out on the clock of the claim
-- (or of the last started invocation): a long video phase could be rescued under a live worker, and the
-- video lease had to be long (30 minutes) to avoid that, so a worker lost before its first invocation left
-- the job (and its persona, 409) stalled for that long. Now the lease is renewed by every report and every
-- delivered state (now + p_lease, never shortened), and the worker holds only the short job lease until its
-- first invocation is recorded (genjobs.services.worker.videos): a job with no live invocation is found by
-- the rescue sweep within one lease.
--
-- The renewal happens only once less than half of `p_lease` is left (genjobs_renewed_lease_v1), and never
-- shortens a lease: a burst of reports (or a repeated one) does not bump the job's version each time, so a
-- repeated report stays the no-op it was (`changed: false`) and long-polls are not woken by heartbeats.
--
-- genjobs_report_progress_v2 and genjobs_record_state_v2 supersede their _v1 (013), which stay for code still
-- running during a deploy until a contract migration drops them. The rest of their rules are unchanged.

CREATE FUNCTION genjobs_renewed_lease_v1(p_lease_expires_at timestamptz, p_now timestamptz, p_lease interval)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_lease_expires_at IS NULL OR p_lease_expires_at < p_now + p_lease / 2
                THEN greatest(p_lease_expires_at, p_now + p_lease)
                ELSE p_lease_expires_at END
$$;

CREATE FUNCTION genjobs_report_progress_v2(p_job_id uuid, p_merchant_id text, p_attempt integer, p_step text,
                                           p_progress integer, p_now timestamptz, p_lease interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before generation_jobs%ROWTYPE;
    v_job    generation_jobs%ROWTYPE;
BEGIN
    SELECT * INTO v_before FROM generation_jobs
     WHERE id = p_job_id AND (p_merchant_id IS NULL OR merchant_id = p_merchant_id)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF p_attempt IS NOT NULL AND v_before.attempt <> p_attempt THEN
        RETURN genjobs_job_answer_v1('stale_attempt', v_before, NULL);
    END IF;
    IF v_before.status NOT IN ('processing', 'generating_videos') THEN
        RETURN genjobs_job_answer_v1('not_running', v_before, NULL);
    END IF;
    UPDATE generation_jobs
       SET current_step = coalesce(p_step, current_step), progress = greatest(progress, coalesce(p_progress, 0)),
           -- a worker that reports is alive: its lease runs from now again
           lease_expires_at = genjobs_renewed_lease_v1(lease_expires_at, p_now, p_lease)
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    RETURN genjobs_job_answer_v1('updated', v_before, v_job);
END
$$;

CREATE FUNCTION genjobs_record_state_v2(
    p_job_id uuid, p_merchant_id text, p_attempt integer, p_running text[], p_state text, p_url text,
    p_bucket text, p_key text, p_size_bytes bigint, p_complete_when_done boolean, p_now timestamptz,
    p_lease interval
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before    generation_jobs%ROWTYPE;
    v_job       generation_jobs%ROWTYPE;
    v_new_state boolean;
    v_media     integer := 0;
    v_done      jsonb;
BEGIN
    SELECT * INTO v_before FROM generation_jobs
     WHERE id = p_job_id AND (p_merchant_id IS NULL OR merchant_id = p_merchant_id)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF p_attempt IS NOT NULL AND v_before.attempt <> p_attempt THEN
        RETURN genjobs_job_answer_v1('stale_attempt', v_before, NULL);
    END IF;
    IF NOT (v_before.status = ANY (p_running)) THEN
        RETURN genjobs_job_answer_v1('not_running', v_before, NULL);
    END IF;
    IF NOT (p_state = ANY (v_before.states_requested)) THEN
        RETURN genjobs_job_answer_v1('state_not_requested', v_before, NULL);
    END IF;

    IF p_bucket IS NOT NULL THEN
        INSERT INTO media_outputs (job_id, merchant_id, kind, state, s3_bucket, s3_key, url, content_type,
                                   size_bytes, duration_seconds)
        SELECT v_before.id, v_before.merchant_id, 'video', p_state, p_bucket, p_key, p_url, 'video/mp4', p_size_bytes,
               genjobs_video_seconds_v1(v_before.metadata,
                                        (SELECT m.default_parameters FROM model_configurations m
                                          WHERE m.model_id = v_before.model_id))
        ON CONFLICT (s3_bucket, s3_key) DO NOTHING;
        GET DIAGNOSTICS v_media = ROW_COUNT;
    END IF;

    v_new_state := NOT (p_state = ANY (v_before.states_generated));
    UPDATE generation_jobs j
       SET states_generated = CASE WHEN v_new_state THEN array_append(j.states_generated, p_state)
                                   ELSE j.states_generated END,
           progress = greatest(j.progress, 100 * (cardinality(j.states_generated) + v_new_state::int)
                                           / greatest(cardinality(j.states_requested), 1)),
           current_step = 'generated_' || (cardinality(j.states_generated) + v_new_state::int) || '_of_'
                          || cardinality(j.states_requested) || '_states',
           -- a delivered state is a sign of life: the lease runs from now again
           lease_expires_at = genjobs_renewed_lease_v1(j.lease_expires_at, p_now, p_lease)
     WHERE j.id = p_job_id
    RETURNING * INTO v_job;

    -- the first output of a state names the persona's video; a second one for the same state does not
    -- replace it (a late or repeated delivery must not change what the merchant already sees)
    IF v_new_state AND p_url IS NOT NULL AND (p_bucket IS NULL OR v_media > 0) THEN
        UPDATE personas SET video_states = video_states || jsonb_build_object(p_state, p_url)
         WHERE id = v_job.persona_id;
    END IF;
    UPDATE video_invocations SET status = 'completed', completed_at = p_now
     WHERE job_id = p_job_id AND state = p_state AND status IN ('starting', 'in_progress');

    IF p_complete_when_done AND cardinality(v_job.states_generated) >= cardinality(v_job.states_requested) THEN
        v_done := genjobs_complete_job_v1(p_job_id, NULL, NULL, NULL, NULL, p_now);
        RETURN jsonb_build_object('outcome', 'completed', 'before_status', v_before.status,
                                  'before_attempt', v_before.attempt, 'before_version', v_before.version,
                                  'job', v_done -> 'job', 'media_recorded', v_media > 0,
                                  'charged', coalesce((v_done ->> 'charged')::boolean, false));
    END IF;
    RETURN genjobs_job_answer_v1(CASE WHEN v_new_state OR v_media > 0 THEN 'recorded' ELSE 'duplicate' END,
                                 v_before, v_job, jsonb_build_object('media_recorded', v_media > 0));
END
$$;
