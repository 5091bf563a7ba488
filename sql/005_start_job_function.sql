-- 005: starting a job, exactly, in one round trip.
--
-- genjobs_start_job() does every check and the insert inside one function call. It first locks the
-- merchant's row (auto-provisioning it), which serializes the starts of one merchant. In READ COMMITTED
-- every statement of a plpgsql function takes a fresh snapshot, so the counts taken after the lock see
-- every job committed by the previous lock holder: N concurrent starts against a limit L admit exactly L.
-- (A single plain statement would not do: its snapshot is taken before it waits for the lock.)
--
-- Checks, in order: idempotency replay, persona (exists, this merchant's, not deleted; active for state
-- videos), prompt variables against the template, one active job per persona, the sliding-hour rate limit,
-- the regeneration cooldown (variations only), the monthly budget (spent + reserved by active jobs +
-- this job's estimate). The answer is a jsonb object whose "outcome" says what happened.

CREATE FUNCTION genjobs_start_job(
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
    v_declared   text[];
    v_defaults   jsonb;
    v_unknown    text[];
    v_missing    text[];
    v_active_id  uuid;
    v_limit      integer;
    v_used       integer;
    v_frees_at   timestamptz;
    v_estimate   numeric;
    v_spent      numeric;
    v_reserved   numeric;
    v_period     date := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
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
        RETURN jsonb_build_object('outcome', 'persona_not_found');
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

    v_limit := coalesce(v_merchant.hourly_generation_limit, p_default_hourly_limit);
    SELECT count(*) INTO v_used FROM generation_jobs
     WHERE merchant_id = p_merchant_id AND created_at > p_now - interval '1 hour';
    IF v_used >= v_limit THEN
        -- the next slot frees when the (used - limit + 1)-th oldest job of the window leaves it
        SELECT created_at + interval '1 hour' INTO v_frees_at FROM generation_jobs
         WHERE merchant_id = p_merchant_id AND created_at > p_now - interval '1 hour'
         ORDER BY created_at OFFSET (v_used - v_limit) LIMIT 1;
        RETURN jsonb_build_object(
            'outcome', 'rate_limited', 'limit', v_limit, 'used', v_used,
            'window_frees_at', v_frees_at,
            'retry_after_seconds', greatest(1, ceil(extract(epoch FROM coalesce(v_frees_at, p_now + interval '1 hour') - p_now))));
    END IF;

    IF p_job_type = 'character_variations' AND v_persona.last_variations_completed_at IS NOT NULL
       AND v_persona.last_variations_completed_at + p_cooldown > p_now THEN
        RETURN jsonb_build_object(
            'outcome', 'cooldown_active',
            'available_at', v_persona.last_variations_completed_at + p_cooldown,
            'retry_after_seconds',
            greatest(1, ceil(extract(epoch FROM v_persona.last_variations_completed_at + p_cooldown - p_now))));
    END IF;

    SELECT * INTO v_model FROM model_configurations
     WHERE media_type = CASE p_job_type WHEN 'character_variations' THEN 'image' ELSE 'video' END
       AND is_default AND enabled;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'no_model');
    END IF;
    IF v_model.pricing_unit = 'image' THEN
        v_estimate := v_model.unit_price_usd * coalesce(p_variation_count, 1);
    ELSE
        v_estimate := v_model.unit_price_usd * coalesce(cardinality(p_states), 0)
                      * coalesce((v_model.default_parameters ->> 'durationSeconds')::numeric, 6);
    END IF;

    IF v_merchant.monthly_budget_usd IS NOT NULL THEN
        SELECT coalesce(sum(amount_usd), 0) INTO v_spent FROM usage_ledger
         WHERE merchant_id = p_merchant_id AND billing_period = v_period;
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
