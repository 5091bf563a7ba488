-- 013: every job state change is one named database function, and the rules they share exist once.
--
-- Python calls these functions (genjobs.data); it never re-implements what they decide. Each call is one
-- round trip, and PL/pgSQL caches the plans of the statements inside per backend, without a server-side
-- PREPARE (which would pin an RDS Proxy session).
--
-- Names carry a version (`_v1`): a later change ships `_v2` beside it, so old code still running during a
-- deploy keeps calling the version it knows (expand), and a later migration drops what no deployed code
-- calls any more (contract). This migration supersedes genjobs_start_job (005) and
-- genjobs_approve_variation (006); they stay until such a contract migration.
--
-- Answers are jsonb objects whose "outcome" names what happened; genjobs.services.outcomes decodes every
-- outcome in one table. A status change the transition table (002) refuses raises SQLSTATE GJ409 from the
-- trigger, inside the function, as before.
--
-- The shared pieces:
--   genjobs_billing_period_v1             the month a cost counts in
--   genjobs_rate_window_v1                the sliding hour of a merchant: its limit, how many, when a slot frees
--   genjobs_regeneration_available_at_v1  the regeneration cooldown of a persona
--   genjobs_video_seconds_v1              a video's length (the 6-second default lives here only)
--   genjobs_job_cost_v1                   what a job's outputs cost at its model's price
--   genjobs_charge_job_v1                 a job's ledger entry, once ('job:<id>')
--   genjobs_release_persona_v1            a persona whose job did not finish goes back to draft
-- The state changes:
--   genjobs_start_job_v2, genjobs_claim_job_v1, genjobs_record_variation_v1, genjobs_record_state_v1,
--   genjobs_report_progress_v1, genjobs_complete_job_v1, genjobs_fail_job_v1, genjobs_cancel_job_v1, genjobs_rescue_jobs_v1,
--   genjobs_approve_variation_v2.

-- ------------------------------------------------------------------------------------------ shared pieces

CREATE FUNCTION genjobs_billing_period_v1(p_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', p_at AT TIME ZONE 'UTC')::date
$$;

-- The sliding hour: generations of the merchant created in (now - 1 hour, now]. `frees_at` is when the
-- window next has a free slot: at the limit, when the (used - limit + 1)-th oldest job leaves it; below
-- the limit, when the oldest one leaves (the window "resets"); NULL for an empty window.
CREATE FUNCTION genjobs_rate_window_v1(p_merchant_id text, p_default_limit integer, p_now timestamptz,
                                       OUT hourly_limit integer, OUT used integer, OUT frees_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH merchant AS (
        SELECT coalesce((SELECT m.hourly_generation_limit FROM merchants m WHERE m.id = p_merchant_id),
                        p_default_limit) AS hourly_limit
    ), win AS (
        SELECT j.created_at FROM generation_jobs j
         WHERE j.merchant_id = p_merchant_id AND j.created_at > p_now - interval '1 hour'
    )
    SELECT merchant.hourly_limit,
           (SELECT count(*) FROM win)::integer,
           (SELECT win.created_at + interval '1 hour' FROM win ORDER BY win.created_at
             OFFSET greatest((SELECT count(*) FROM win) - merchant.hourly_limit, 0) LIMIT 1)
      FROM merchant
$$;

-- NULL when the persona may generate variations again now.
CREATE FUNCTION genjobs_regeneration_available_at_v1(p_last_variations_completed_at timestamptz,
                                                     p_cooldown interval, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_last_variations_completed_at + p_cooldown > p_now
                THEN p_last_variations_completed_at + p_cooldown END
$$;

-- A state video's length in seconds: the job's own (recorded when its video phase began), else the model's
-- default parameter, else 6 (Nova Reel's shortest clip).
CREATE FUNCTION genjobs_video_seconds_v1(p_job_metadata jsonb, p_model_parameters jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce((p_job_metadata ->> 'video_duration_seconds')::numeric,
                    (p_model_parameters ->> 'durationSeconds')::numeric, 6)
$$;

-- What a job's outputs cost: images made x price per image, or states generated x seconds x price per
-- second. `quantity` is in the model's pricing unit.
CREATE FUNCTION genjobs_job_cost_v1(p_job generation_jobs, OUT quantity numeric, OUT unit_price_usd numeric,
                                    OUT amount_usd numeric)
LANGUAGE sql STABLE AS $$
    SELECT q.quantity, q.unit_price_usd, q.quantity * q.unit_price_usd
      FROM (SELECT coalesce(m.unit_price_usd, 0) AS unit_price_usd,
                   CASE WHEN p_job.job_type = 'character_variations'
                        THEN (SELECT count(*) FROM character_variations v WHERE v.job_id = p_job.id)::numeric
                        ELSE cardinality(p_job.states_generated)
                             * genjobs_video_seconds_v1(p_job.metadata, m.default_parameters) END AS quantity
              FROM (SELECT 1) AS one
              LEFT JOIN model_configurations m ON m.model_id = p_job.model_id) AS q
$$;

-- A job's cost in the ledger, exactly once whatever calls it how often ('job:<id>' is unique per merchant).
-- True when this call recorded it.
CREATE FUNCTION genjobs_charge_job_v1(p_job generation_jobs, p_quantity numeric, p_unit_price_usd numeric,
                                      p_now timestamptz, p_details jsonb DEFAULT '{}'::jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, model_id, quantity,
                              unit_price_usd, amount_usd, details)
    VALUES (p_job.merchant_id, p_job.id, 'job:' || p_job.id, genjobs_billing_period_v1(p_now), p_job.model_id,
            p_quantity, p_unit_price_usd, p_job.cost_usd, p_details)
    ON CONFLICT (merchant_id, usage_key) DO NOTHING;
    RETURN FOUND;
END
$$;

-- A persona whose variations job did not finish (failed, canceled, timed out) goes back to draft.
CREATE FUNCTION genjobs_release_persona_v1(p_persona_id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE personas SET status = 'draft' WHERE id = p_persona_id AND status = 'generating'
$$;

-- The answer of a command on one job: the outcome, the job's state before (locked: the latest committed
-- version) and the job after.
CREATE FUNCTION genjobs_job_answer_v1(p_outcome text, p_before generation_jobs, p_after generation_jobs,
                                      p_extra jsonb DEFAULT '{}'::jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('outcome', p_outcome,
                              'before_status', p_before.status, 'before_attempt', p_before.attempt,
                              'before_version', p_before.version,
                              'job', CASE WHEN p_after.id IS NULL THEN to_jsonb(p_before) ELSE to_jsonb(p_after) END)
           || p_extra
$$;

-- ------------------------------------------------------------------------------------------ start

-- Every check of a start and the insert, in one round trip (the rules are those of 005, which documents
-- why the merchant's row is locked first: N concurrent starts against a limit L admit exactly L).
CREATE FUNCTION genjobs_start_job_v2(
    p_merchant_id          text,
    p_persona_id           uuid,
    p_job_type             text,
    p_variation_count      integer,
    p_states               text[],
    p_prompt_variables     jsonb,
    p_idempotency_key      text,
    p_request_hash         text,
    p_default_hourly_limit integer,
    p_cooldown             interval,
    p_now                  timestamptz,
    p_max_retries          integer,
    p_builtin_variables    text[],
    p_builtin_defaults     jsonb
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_merchant   merchants%ROWTYPE;
    v_existing   generation_jobs%ROWTYPE;
    v_persona    personas%ROWTYPE;
    v_template   prompt_templates%ROWTYPE;
    v_model      model_configurations%ROWTYPE;
    v_job        generation_jobs%ROWTYPE;
    v_window     record;
    v_declared   text[];
    v_defaults   jsonb;
    v_unknown    text[];
    v_missing    text[];
    v_active_id  uuid;
    v_available  timestamptz;
    v_estimate   numeric;
    v_spent      numeric;
    v_reserved   numeric;
BEGIN
    INSERT INTO merchants (id) VALUES (p_merchant_id) ON CONFLICT (id) DO NOTHING;
    SELECT * INTO v_merchant FROM merchants WHERE id = p_merchant_id FOR UPDATE;

    IF p_idempotency_key IS NOT NULL THEN
        SELECT * INTO v_existing FROM generation_jobs
         WHERE merchant_id = p_merchant_id AND idempotency_key = p_idempotency_key;
        IF FOUND THEN
            IF v_existing.request_hash IS DISTINCT FROM p_request_hash THEN
                RETURN jsonb_build_object('outcome', 'idempotency_conflict', 'job_id', v_existing.id);
            END IF;
            RETURN jsonb_build_object('outcome', 'replayed', 'job', to_jsonb(v_existing));
        END IF;
    END IF;

    SELECT * INTO v_persona FROM personas
     WHERE id = p_persona_id AND merchant_id = p_merchant_id AND deleted_at IS NULL;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', p_persona_id);
    END IF;
    IF p_job_type = 'state_videos' AND v_persona.status <> 'active' THEN
        RETURN jsonb_build_object('outcome', 'persona_not_active', 'persona_status', v_persona.status);
    END IF;

    SELECT * INTO v_template FROM prompt_templates WHERE job_type = p_job_type AND is_active;
    IF FOUND THEN
        v_declared := v_template.variables;
        v_defaults := v_template.variable_defaults;
    ELSE
        v_declared := p_builtin_variables;
        v_defaults := p_builtin_defaults;
    END IF;
    SELECT array_agg(k ORDER BY k) INTO v_unknown
      FROM jsonb_object_keys(p_prompt_variables) AS k WHERE NOT (k = ANY (v_declared));
    SELECT array_agg(v ORDER BY v) INTO v_missing
      FROM unnest(v_declared) AS v WHERE NOT (p_prompt_variables ? v) AND NOT (v_defaults ? v);
    IF v_unknown IS NOT NULL OR v_missing IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'invalid_variables',
                                  'unknown', coalesce(v_unknown, '{}'), 'missing', coalesce(v_missing, '{}'),
                                  'declared', v_declared);
    END IF;

    SELECT id INTO v_active_id FROM generation_jobs
     WHERE persona_id = p_persona_id AND status IN ('queued', 'processing', 'generating_videos');
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_busy', 'active_job_id', v_active_id);
    END IF;

    SELECT * INTO v_window FROM genjobs_rate_window_v1(p_merchant_id, p_default_hourly_limit, p_now);
    IF v_window.used >= v_window.hourly_limit THEN
        RETURN jsonb_build_object(
            'outcome', 'rate_limited', 'limit', v_window.hourly_limit, 'used', v_window.used,
            'window_frees_at', v_window.frees_at,
            'retry_after_seconds',
            greatest(1, ceil(extract(epoch FROM coalesce(v_window.frees_at, p_now + interval '1 hour') - p_now))));
    END IF;

    IF p_job_type = 'character_variations' THEN
        v_available := genjobs_regeneration_available_at_v1(v_persona.last_variations_completed_at, p_cooldown, p_now);
        IF v_available IS NOT NULL THEN
            RETURN jsonb_build_object('outcome', 'cooldown_active', 'available_at', v_available,
                                      'retry_after_seconds', greatest(1, ceil(extract(epoch FROM v_available - p_now))));
        END IF;
    END IF;

    SELECT * INTO v_model FROM model_configurations
     WHERE media_type = CASE p_job_type WHEN 'character_variations' THEN 'image' ELSE 'video' END
       AND is_default AND enabled;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'no_model', 'job_type', p_job_type);
    END IF;
    IF v_model.pricing_unit = 'image' THEN
        v_estimate := v_model.unit_price_usd * coalesce(p_variation_count, 1);
    ELSE
        v_estimate := v_model.unit_price_usd * coalesce(cardinality(p_states), 0)
                      * genjobs_video_seconds_v1('{}'::jsonb, v_model.default_parameters);
    END IF;

    IF v_merchant.monthly_budget_usd IS NOT NULL THEN
        SELECT coalesce(sum(amount_usd), 0) INTO v_spent FROM usage_ledger
         WHERE merchant_id = p_merchant_id AND billing_period = genjobs_billing_period_v1(p_now);
        SELECT coalesce(sum(estimated_cost_usd), 0) INTO v_reserved FROM generation_jobs
         WHERE merchant_id = p_merchant_id AND status IN ('queued', 'processing', 'generating_videos');
        IF v_spent + v_reserved + v_estimate > v_merchant.monthly_budget_usd THEN
            RETURN jsonb_build_object(
                'outcome', 'budget_exceeded', 'budget_usd', v_merchant.monthly_budget_usd,
                'spent_usd', v_spent, 'reserved_usd', v_reserved, 'estimated_cost_usd', v_estimate);
        END IF;
    END IF;

    INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, states_requested,
                                 prompt_template_id, prompt_variables, model_id, estimated_cost_usd,
                                 max_retries, idempotency_key, request_hash, created_at, available_at,
                                 current_step)
    VALUES (p_merchant_id, p_persona_id, p_job_type, p_variation_count, coalesce(p_states, '{}'),
            v_template.id, p_prompt_variables, v_model.model_id, v_estimate,
            p_max_retries, p_idempotency_key, p_request_hash, p_now, p_now, 'queued')
    RETURNING * INTO v_job;

    IF p_job_type = 'character_variations' AND v_persona.status = 'draft' THEN
        UPDATE personas SET status = 'generating' WHERE id = p_persona_id;
    END IF;

    RETURN jsonb_build_object('outcome', 'created', 'job', to_jsonb(v_job));
END
$$;

-- ------------------------------------------------------------------------------------------ claim

-- queued -> processing with a new attempt and a lease, and everything the worker needs to run it: the
-- persona's fields, the template, the model's parameters and price, a video's length, the approved image's
-- stored file. NULL when the job is not claimable (claimed by a duplicate invoke, finished, canceled, or
-- waiting out a retry's backoff).
CREATE FUNCTION genjobs_claim_job_v1(p_job_id uuid, p_now timestamptz, p_lease interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_job generation_jobs%ROWTYPE;
BEGIN
    UPDATE generation_jobs
       SET status = 'processing', attempt = attempt + 1, lease_expires_at = p_now + p_lease,
           current_step = 'starting', dispatched_at = coalesce(dispatched_at, p_now)
     WHERE id = p_job_id AND status = 'queued' AND available_at <= p_now
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN (
        SELECT to_jsonb(v_job) || jsonb_build_object(
                   'persona_name', p.name, 'persona_description', p.description,
                   'persona_product_name', p.product_name, 'persona_character_type', p.character_type,
                   'template_text', t.template, 'template_defaults', t.variable_defaults,
                   'unit_price_usd', m.unit_price_usd, 'pricing_unit', m.pricing_unit,
                   'model_parameters', coalesce(m.default_parameters, '{}'::jsonb),
                   'video_seconds', genjobs_video_seconds_v1(v_job.metadata, m.default_parameters),
                   'persona_image_bucket', ao.s3_bucket, 'persona_image_key', ao.s3_key)
          FROM personas p
          LEFT JOIN prompt_templates t ON t.id = v_job.prompt_template_id
          LEFT JOIN model_configurations m ON m.model_id = v_job.model_id
          LEFT JOIN character_variations av ON av.id = p.approved_variation_id
          LEFT JOIN media_outputs ao ON ao.id = av.media_output_id
         WHERE p.id = v_job.persona_id);
END
$$;

-- ------------------------------------------------------------------------------------------ outputs

-- One generated image of a running variations job: its media output and variation, progress, step and a
-- renewed lease. False when the attempt is stale or the job no longer processing.
CREATE FUNCTION genjobs_record_variation_v1(
    p_job_id uuid, p_attempt integer, p_index integer, p_seed bigint, p_bucket text, p_key text, p_url text,
    p_content_type text, p_size_bytes bigint, p_width integer, p_height integer, p_progress integer,
    p_step text, p_lease_until timestamptz, p_prompt text
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_job   generation_jobs%ROWTYPE;
    v_media uuid;
BEGIN
    UPDATE generation_jobs
       SET progress = greatest(progress, p_progress), current_step = p_step, lease_expires_at = p_lease_until,
           prompt = coalesce(prompt, p_prompt)
     WHERE id = p_job_id AND attempt = p_attempt AND status = 'processing'
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO media_outputs (job_id, merchant_id, kind, s3_bucket, s3_key, url, content_type, size_bytes,
                               width, height)
    VALUES (v_job.id, v_job.merchant_id, 'image', p_bucket, p_key, p_url, p_content_type, p_size_bytes,
            p_width, p_height)
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, url = EXCLUDED.url
    RETURNING id INTO v_media;
    INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, media_output_id,
                                      image_url)
    VALUES (v_job.id, v_job.persona_id, v_job.merchant_id, p_index, p_seed, v_media, p_url)
    ON CONFLICT (job_id, variation_index) DO UPDATE
       SET seed = EXCLUDED.seed, media_output_id = EXCLUDED.media_output_id, image_url = EXCLUDED.image_url;
    RETURN true;
END
$$;

-- One state of a running state-videos job: appended once (progress never moves backwards), with its media
-- output when it came as a file (a duplicate S3 event records nothing twice), the persona's video_states
-- entry when the state is new and has a URL, its invocation marked completed; and, when
-- `p_complete_when_done` and every requested state is in, the job completed (genjobs_complete_job_v1).
-- `p_running` are the statuses the job may be in: the S3 path takes only generating_videos, the progress
-- command any running status. Outcomes: recorded, duplicate, completed, not_found, stale_attempt,
-- not_running, state_not_requested.
CREATE FUNCTION genjobs_record_state_v1(
    p_job_id uuid, p_merchant_id text, p_attempt integer, p_running text[], p_state text, p_url text,
    p_bucket text, p_key text, p_size_bytes bigint, p_complete_when_done boolean, p_now timestamptz
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
                          || cardinality(j.states_requested) || '_states'
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

-- ------------------------------------------------------------------------------------------ progress

-- A running job's step and/or progress as its worker reports them (progress never moves backwards:
-- late or reordered reports are harmless). Outcomes: updated, not_found, stale_attempt, not_running.
CREATE FUNCTION genjobs_report_progress_v1(p_job_id uuid, p_merchant_id text, p_attempt integer, p_step text,
                                           p_progress integer) RETURNS jsonb
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
       SET current_step = coalesce(p_step, current_step), progress = greatest(progress, coalesce(p_progress, 0))
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    RETURN genjobs_job_answer_v1('updated', v_before, v_job);
END
$$;

-- ------------------------------------------------------------------------------------------ complete

-- Complete a job: cost (given, or genjobs_job_cost_v1 of its outputs), the variations on the job and the
-- persona for a variations job, the ledger charged once. Outcomes: completed, unchanged (it already was),
-- not_found, stale_attempt, not_running (the status is not one of `p_expected`, when given). Any other
-- status change the transition table refuses raises GJ409 (a failed or canceled job cannot complete).
CREATE FUNCTION genjobs_complete_job_v1(p_job_id uuid, p_merchant_id text, p_attempt integer, p_expected text[],
                                        p_cost_usd numeric, p_now timestamptz) RETURNS jsonb
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
    IF p_attempt IS NOT NULL AND v_before.attempt <> p_attempt THEN
        RETURN genjobs_job_answer_v1('stale_attempt', v_before, NULL);
    END IF;
    IF p_expected IS NOT NULL AND NOT (v_before.status = ANY (p_expected)) THEN
        RETURN genjobs_job_answer_v1('not_running', v_before, NULL);
    END IF;
    IF v_before.status = 'completed' THEN
        RETURN genjobs_job_answer_v1('unchanged', v_before, NULL);
    END IF;

    SELECT * INTO v_cost FROM genjobs_job_cost_v1(v_before);
    UPDATE generation_jobs j
       SET status = 'completed', progress = 100, current_step = 'completed',
           variation_urls = CASE WHEN j.job_type = 'character_variations'
                                 THEN coalesce((SELECT array_agg(v.image_url ORDER BY v.variation_index)
                                                  FROM character_variations v WHERE v.job_id = j.id), '{}')
                                 ELSE j.variation_urls END,
           cost_usd = coalesce(p_cost_usd, v_cost.amount_usd, 0)
     WHERE j.id = p_job_id
    RETURNING * INTO v_job;

    IF v_job.job_type = 'character_variations' THEN
        UPDATE personas p
           SET status = CASE WHEN p.status IN ('draft', 'generating') THEN 'pending_approval' ELSE p.status END,
               last_variations_completed_at = p_now,
               generation_metadata = p.generation_metadata || jsonb_build_object('last_variations_job_id', v_job.id)
         WHERE p.id = v_job.persona_id;
    END IF;

    IF p_cost_usd IS NULL THEN
        v_charged := genjobs_charge_job_v1(v_job, v_cost.quantity, v_cost.unit_price_usd, p_now);
    ELSE  -- a cost reported by the caller: one unit at that price
        v_charged := genjobs_charge_job_v1(v_job, 1, p_cost_usd, p_now, '{"source": "reported"}'::jsonb);
    END IF;
    RETURN genjobs_job_answer_v1('completed', v_before, v_job, jsonb_build_object('charged', v_charged));
END
$$;

-- ------------------------------------------------------------------------------------------ fail / retry

-- A failed attempt or a reported failure: back to queued with retry_count + 1 and `p_retry_at` when the error
-- is retryable and retries remain, otherwise failed with the error (and the persona released). Outcomes:
-- retried, failed, unchanged (already failed), not_found, stale_attempt, not_running (status not one of
-- `p_expected`, when given). A completed or canceled job cannot fail: the trigger raises GJ409.
CREATE FUNCTION genjobs_fail_job_v1(p_job_id uuid, p_merchant_id text, p_attempt integer, p_expected text[],
                                    p_retryable boolean, p_error_code text, p_error_message text,
                                    p_retry_at timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before generation_jobs%ROWTYPE;
    v_job    generation_jobs%ROWTYPE;
    v_retry  boolean;
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
    UPDATE generation_jobs
       SET status = CASE WHEN v_retry THEN 'queued' ELSE 'failed' END,
           retry_count = retry_count + v_retry::int,
           available_at = coalesce(p_retry_at, available_at),
           lease_expires_at = NULL,
           error_code = p_error_code,
           error_message = left(p_error_message, 2000),
           current_step = CASE WHEN v_retry THEN 'waiting_to_retry' ELSE 'failed' END
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    IF NOT v_retry THEN
        PERFORM genjobs_release_persona_v1(v_job.persona_id);
    END IF;
    RETURN genjobs_job_answer_v1(CASE WHEN v_retry THEN 'retried' ELSE 'failed' END, v_before, v_job);
END
$$;

-- ------------------------------------------------------------------------------------------ cancel

-- queued / processing / generating_videos -> canceled (the persona released). Outcomes: canceled,
-- not_active (already finished: before_status says how), not_found. The running worker's next write names
-- status and attempt and so matches nothing: it stops.
CREATE FUNCTION genjobs_cancel_job_v1(p_job_id uuid, p_merchant_id text) RETURNS jsonb
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
    IF v_before.status NOT IN ('queued', 'processing', 'generating_videos') THEN
        RETURN genjobs_job_answer_v1('not_active', v_before, NULL);
    END IF;
    UPDATE generation_jobs SET status = 'canceled', current_step = 'canceled', lease_expires_at = NULL
     WHERE id = p_job_id
    RETURNING * INTO v_job;
    PERFORM genjobs_release_persona_v1(v_job.persona_id);
    RETURN genjobs_job_answer_v1('canceled', v_before, v_job);
END
$$;

-- ------------------------------------------------------------------------------------------ rescue

-- Jobs whose worker stopped renewing its lease (a batch, SKIP LOCKED: concurrent sweeps and workers never
-- handle one job twice): back to queued for a new attempt while retries remain (the sweep re-dispatches them
-- right after, so their dispatch is stamped here), otherwise failed with TIMED_OUT and the persona released.
CREATE FUNCTION genjobs_rescue_jobs_v1(p_now timestamptz, p_batch integer)
RETURNS TABLE (id uuid, status text, attempt integer, retry_count integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_job generation_jobs%ROWTYPE;
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
            UPDATE generation_jobs j
               SET status = 'failed', error_code = 'TIMED_OUT', current_step = 'timed_out',
                   error_message = 'The job did not finish within its lease after ' || (j.max_retries + 1)
                                   || ' attempts.',
                   available_at = p_now, lease_expires_at = NULL
             WHERE j.id = v_job.id
            RETURNING * INTO v_job;
            PERFORM genjobs_release_persona_v1(v_job.persona_id);
        END IF;
        id := v_job.id; status := v_job.status; attempt := v_job.attempt; retry_count := v_job.retry_count;
        RETURN NEXT;
    END LOOP;
END
$$;

-- ------------------------------------------------------------------------------------------ approval

-- Approving a variation, race-safe, in one round trip: the rules of 006 (which explains the locking), and
-- the persona answered with its regeneration_available_at (the cooldown rule above).
CREATE FUNCTION genjobs_approve_variation_v2(
    p_merchant_id  text,
    p_persona_id   uuid,
    p_variation_id uuid,
    p_now          timestamptz,
    p_cooldown     interval
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_persona     personas%ROWTYPE;
    v_variation   character_variations%ROWTYPE;
    v_job_status  text;
    v_active_id   uuid;
    v_previous    uuid;
    v_outcome     text := 'approved';
BEGIN
    SELECT * INTO v_persona FROM personas
     WHERE id = p_persona_id AND merchant_id = p_merchant_id AND deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', p_persona_id);
    END IF;

    SELECT * INTO v_variation FROM character_variations
     WHERE id = p_variation_id AND persona_id = p_persona_id AND merchant_id = p_merchant_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'variation_not_found', 'variation_id', p_variation_id);
    END IF;

    IF v_variation.approved AND v_persona.approved_variation_id = p_variation_id AND v_persona.status = 'active' THEN
        v_outcome := 'unchanged';
    ELSE
        SELECT status INTO v_job_status FROM generation_jobs WHERE id = v_variation.job_id;
        IF v_job_status IS DISTINCT FROM 'completed' THEN
            RETURN jsonb_build_object('outcome', 'job_not_completed', 'job_id', v_variation.job_id,
                                      'job_status', v_job_status);
        END IF;

        SELECT id INTO v_active_id FROM generation_jobs
         WHERE persona_id = p_persona_id AND job_type = 'state_videos'
           AND status IN ('queued', 'processing', 'generating_videos');
        IF FOUND THEN
            RETURN jsonb_build_object('outcome', 'videos_in_progress', 'active_job_id', v_active_id);
        END IF;

        v_previous := v_persona.approved_variation_id;
        UPDATE character_variations SET approved = false, approved_at = NULL
         WHERE persona_id = p_persona_id AND approved AND id <> p_variation_id;
        UPDATE character_variations SET approved = true, approved_at = coalesce(approved_at, p_now)
         WHERE id = p_variation_id;
        UPDATE personas
           SET approved_variation_id = p_variation_id,
               image_url = v_variation.image_url,
               status = 'active',
               video_states = CASE WHEN v_previous IS NOT NULL AND v_previous <> p_variation_id
                                   THEN '{}'::jsonb ELSE video_states END,
               generation_metadata = generation_metadata
                   || jsonb_build_object('approved_at', p_now, 'approved_job_id', v_variation.job_id)
         WHERE id = p_persona_id
        RETURNING * INTO v_persona;
    END IF;

    RETURN jsonb_build_object(
        'outcome', v_outcome, 'previous_variation_id', v_previous,
        'persona', to_jsonb(v_persona) || jsonb_build_object(
            'regeneration_available_at',
            genjobs_regeneration_available_at_v1(v_persona.last_variations_completed_at, p_cooldown, p_now)));
END
$$;
