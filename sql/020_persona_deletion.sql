-- 020: a deleted persona is gone everywhere.
--
-- A delete and a start of the same persona used to race: the delete checked for an active job without a
-- lock and the start read the persona without one, so both could succeed and a job ran (and was charged) on
-- a deleted persona. Both now lock the persona's row: whichever comes second sees what the first did (a
-- job: the delete is refused, 409; a deletion: the start finds no persona, 404). A replayed Idempotency-Key
-- of a deleted persona's job is 404 too.
--
-- genjobs_start_job_v3 supersedes genjobs_start_job_v2 (013); the rest of its rules are unchanged.

CREATE FUNCTION genjobs_delete_persona_v1(p_merchant_id text, p_persona_id uuid, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_persona   personas%ROWTYPE;
    v_active_id uuid;
BEGIN
    SELECT * INTO v_persona FROM personas
     WHERE id = p_persona_id AND merchant_id = p_merchant_id AND deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', p_persona_id);
    END IF;
    SELECT id INTO v_active_id FROM generation_jobs
     WHERE persona_id = p_persona_id AND status IN ('queued', 'processing', 'generating_videos')
     LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_has_active_job', 'active_job_id', v_active_id);
    END IF;
    UPDATE personas SET deleted_at = p_now WHERE id = p_persona_id;
    RETURN jsonb_build_object('outcome', 'deleted');
END
$$;

CREATE FUNCTION genjobs_start_job_v3(
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
            -- a replay names a persona too: once it is deleted, it is gone for replays as well
            IF NOT EXISTS (SELECT 1 FROM personas WHERE id = v_existing.persona_id AND deleted_at IS NULL) THEN
                RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', v_existing.persona_id);
            END IF;
            RETURN jsonb_build_object('outcome', 'replayed', 'job', to_jsonb(v_existing));
        END IF;
    END IF;

    -- locked: a delete of the persona (genjobs_delete_persona_v1 locks it too) waits for this start and then
    -- sees its job, or this start waits for the delete and then finds no persona
    SELECT * INTO v_persona FROM personas
     WHERE id = p_persona_id AND merchant_id = p_merchant_id AND deleted_at IS NULL
       FOR UPDATE;
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

