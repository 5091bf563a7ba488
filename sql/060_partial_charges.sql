-- 060: a job that stopped (failed, canceled, timed out) is charged for what the provider already produced.
--
-- Before, only genjobs_complete_job_v1 charged: a job canceled after 1 of 3 images, or failed after 2 of 3
-- state videos, recorded no cost although the provider billed those outputs, so budgets under-counted.
-- Now the paths that stop a job for good charge it too, with the rules that already exist once:
--   what its outputs cost    genjobs_job_cost_v1 (images stored = character_variations rows; videos =
--                            states_generated, i.e. invocations whose output was recorded, x seconds)
--   the ledger entry, once   genjobs_charge_job_v1 ('job:<id>' is unique per merchant)
-- A job that stops with no output is charged nothing (no zero entry). A failed attempt that is retried is
-- not charged: the job goes on and is charged once when it finishes (completed, failed or canceled), for
-- every output it has by then. Every path that stops a job locks its row first, and outputs are recorded
-- under the same row lock (genjobs_record_variation_v1 / genjobs_record_state_v1 update the job first), so
-- the cost is taken from a consistent set of outputs; outputs that arrive after the job stopped are refused
-- by those functions (the job is no longer running) and so are never charged.
--
-- The budget check of a start sums the ledger of the month, so partial charges count against it at once.
--
-- genjobs_fail_job_v2, genjobs_cancel_job_v2 and genjobs_rescue_jobs_v2 supersede their _v1 (013), which stay
-- for code still running during a deploy until a contract migration drops them.

-- The charge of a job that stopped: its outputs' cost (the caller computed it with genjobs_job_cost_v1 and
-- stored it in cost_usd in the same update that stopped the job), once; nothing for no output.
CREATE FUNCTION genjobs_charge_stopped_job_v1(p_job generation_jobs, p_quantity numeric, p_unit_price_usd numeric,
                                              p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(p_quantity, 0) <= 0 THEN
        RETURN false;
    END IF;
    RETURN genjobs_charge_job_v1(p_job, p_quantity, p_unit_price_usd, p_now,
                                 jsonb_build_object('partial', true, 'status', p_job.status));
END
$$;

-- genjobs_fail_job_v1 (013), and a job that fails for good is charged for its outputs. `p_now` is when.
CREATE FUNCTION genjobs_fail_job_v2(p_job_id uuid, p_merchant_id text, p_attempt integer, p_expected text[],
                                    p_retryable boolean, p_error_code text, p_error_message text,
                                    p_retry_at timestamptz, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before  generation_jobs%ROWTYPE;
    v_job     generation_jobs%ROWTYPE;
    v_retry   boolean;
    v_cost    record;
    v_charged boolean := false;
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
    IF p_expected IS NOT NULL AND NOT (v_before.status = ANY (p_expected)) THEN
        RETURN genjobs_job_answer_v1('not_running', v_before, NULL);
    END IF;
    IF v_before.status = 'failed' THEN
        RETURN genjobs_job_answer_v1('unchanged', v_before, NULL);
    END IF;

    v_retry := p_retryable AND v_before.retry_count < v_before.max_retries;
    SELECT * INTO v_cost FROM genjobs_job_cost_v1(v_before);
    UPDATE generation_jobs
       SET status = CASE WHEN v_retry THEN 'queued' ELSE 'failed' END,
           retry_count = retry_count + v_retry::int,
           available_at = coalesce(p_retry_at, available_at),
           lease_expires_at = NULL,
           error_code = p_error_code,
           error_message = left(p_error_message, 2000),
           current_step = CASE WHEN v_retry THEN 'waiting_to_retry' ELSE 'failed' END,
           cost_usd = CASE WHEN v_retry THEN cost_usd ELSE coalesce(v_cost.amount_usd, 0) END
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    IF NOT v_retry THEN
        PERFORM genjobs_release_persona_v1(v_job.persona_id);
        v_charged := genjobs_charge_stopped_job_v1(v_job, v_cost.quantity, v_cost.unit_price_usd, p_now);
    END IF;
    RETURN genjobs_job_answer_v1(CASE WHEN v_retry THEN 'retried' ELSE 'failed' END, v_before, v_job,
                                 jsonb_build_object('charged', v_charged));
END
$$;

-- genjobs_cancel_job_v1 (013), and the canceled job is charged for its outputs.
CREATE FUNCTION genjobs_cancel_job_v2(p_job_id uuid, p_merchant_id text, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before  generation_jobs%ROWTYPE;
    v_job     generation_jobs%ROWTYPE;
    v_cost    record;
    v_charged boolean;
BEGIN
    SELECT * INTO v_before FROM generation_jobs
     WHERE id = p_job_id AND (p_merchant_id IS NULL OR merchant_id = p_merchant_id)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF v_before.status NOT IN ('queued', 'processing', 'generating_videos') THEN
        RETURN genjobs_job_answer_v1('not_active', v_before, NULL);
    END IF;
    SELECT * INTO v_cost FROM genjobs_job_cost_v1(v_before);
    UPDATE generation_jobs
       SET status = 'canceled', current_step = 'canceled', lease_expires_at = NULL,
           cost_usd = coalesce(v_cost.amount_usd, 0)
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    PERFORM genjobs_release_persona_v1(v_job.persona_id);
    v_charged := genjobs_charge_stopped_job_v1(v_job, v_cost.quantity, v_cost.unit_price_usd, p_now);
    RETURN genjobs_job_answer_v1('canceled', v_before, v_job, jsonb_build_object('charged', v_charged));
END
$$;

-- genjobs_rescue_jobs_v1 (013), and a job failed with TIMED_OUT is charged for its outputs.
CREATE FUNCTION genjobs_rescue_jobs_v2(p_now timestamptz, p_batch integer)
RETURNS TABLE (id uuid, status text, attempt integer, retry_count integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_job  generation_jobs%ROWTYPE;
    v_cost record;
BEGIN
    FOR v_job IN
        SELECT * FROM generation_jobs j
         WHERE j.status IN ('processing', 'generating_videos') AND j.lease_expires_at < p_now
         ORDER BY j.lease_expires_at
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    LOOP
        IF v_job.retry_count < v_job.max_retries THEN
            UPDATE generation_jobs j
               SET status = 'queued', retry_count = j.retry_count + 1, current_step = 'rescued',
                   available_at = p_now, lease_expires_at = NULL,
                   last_dispatch_at = p_now, dispatch_count = j.dispatch_count + 1
             WHERE j.id = v_job.id
            RETURNING * INTO v_job;
        ELSE
            SELECT * INTO v_cost FROM genjobs_job_cost_v1(v_job);
            UPDATE generation_jobs j
               SET status = 'failed', error_code = 'TIMED_OUT', current_step = 'timed_out',
                   error_message = 'The job did not finish within its lease after ' || (j.max_retries + 1)
                                   || ' attempts.',
                   available_at = p_now, lease_expires_at = NULL, cost_usd = coalesce(v_cost.amount_usd, 0)
             WHERE j.id = v_job.id
            RETURNING * INTO v_job;
            PERFORM genjobs_release_persona_v1(v_job.persona_id);
            PERFORM genjobs_charge_stopped_job_v1(v_job, v_cost.quantity, v_cost.unit_price_usd, p_now);
        END IF;
        id := v_job.id; status := v_job.status; attempt := v_job.attempt; retry_count := v_job.retry_count;
        RETURN NEXT;
    END LOOP;
END
$$;
