-- 061: what the control surface needs: job outputs on every job read, idempotent persona creation, the
-- operator's writes (prompt templates, merchant settings, job retries) with their audit trail.
--
-- New shared pieces:
--   genjobs_job_outputs_v1          a job's media outputs as the API shows them (one aggregate)
--   genjobs_with_outputs_v1         a command's answer with its job's outputs (same statement)
--   genjobs_month_commitment_v1     what a merchant's month already holds: ledger spent + reserved by active jobs
--   genjobs_audit_v1                one admin_audit row
-- New state changes (each one round trip):
--   genjobs_create_persona_v1, genjobs_create_template_v1, genjobs_activate_template_v1,
--   genjobs_set_merchant_settings_v1, genjobs_retry_job_v1

-- ------------------------------------------------------------------------------------------ schema

-- A job started again by an operator names the job it retries.
ALTER TABLE generation_jobs ADD COLUMN retry_of uuid REFERENCES generation_jobs (id) ON DELETE SET NULL;
CREATE INDEX generation_jobs_retry_of_idx ON generation_jobs (retry_of) WHERE retry_of IS NOT NULL;
-- The operator's job list across merchants pages newest first.
CREATE INDEX generation_jobs_created_idx ON generation_jobs (created_at DESC, id DESC);

-- A retried POST /personas with the same Idempotency-Key answers the persona it created.
ALTER TABLE personas ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255);
ALTER TABLE personas ADD COLUMN request_hash text;
ALTER TABLE personas ADD CONSTRAINT personas_idempotency_key UNIQUE (merchant_id, idempotency_key);

-- The ledger pages newest first per merchant.
CREATE INDEX usage_ledger_merchant_created_id_idx ON usage_ledger (merchant_id, created_at DESC, id DESC);

-- Every operator write: who (the token's sub), what, the state before and after, when.
CREATE TABLE admin_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 300),
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    before       jsonb,
    after        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- read newest first by id: ids are taken at insert, under the write's locks, so they follow the order in which
-- the writes happened (created_at is the caller's clock, read before it waited for a lock)

-- ------------------------------------------------------------------------------------------ shared pieces

CREATE FUNCTION genjobs_job_outputs_v1(p_job_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', o.id, 'kind', o.kind, 'state', o.state, 'url', o.url, 'content_type', o.content_type,
               'width', o.width, 'height', o.height, 'duration_seconds', o.duration_seconds,
               'size_bytes', o.size_bytes, 'created_at', o.created_at) ORDER BY o.created_at, o.s3_key), '[]'::jsonb)
      FROM media_outputs o WHERE o.job_id = p_job_id
$$;

CREATE FUNCTION genjobs_with_outputs_v1(p_answer jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_answer -> 'job') = 'object'
                THEN jsonb_set(p_answer, '{job,outputs}',
                               genjobs_job_outputs_v1((p_answer -> 'job' ->> 'id')::uuid))
                ELSE p_answer END
$$;

-- The month's money already committed: the ledger of the billing period and the estimates of active jobs
-- (the same sums genjobs_start_job_v3 checks a budget with).
CREATE FUNCTION genjobs_month_commitment_v1(p_merchant_id text, p_now timestamptz,
                                            OUT spent_usd numeric, OUT reserved_usd numeric)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT coalesce(sum(amount_usd), 0) FROM usage_ledger
             WHERE merchant_id = p_merchant_id AND billing_period = genjobs_billing_period_v1(p_now)),
           (SELECT coalesce(sum(estimated_cost_usd), 0) FROM generation_jobs
             WHERE merchant_id = p_merchant_id AND status IN ('queued', 'processing', 'generating_videos'))
$$;

CREATE FUNCTION genjobs_audit_v1(p_actor text, p_action text, p_target_type text, p_target_id text,
                                 p_before jsonb, p_after jsonb, p_now timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO admin_audit (actor, action, target_type, target_id, before, after, created_at)
    VALUES (p_actor, p_action, p_target_type, p_target_id, p_before, p_after, p_now)
$$;

-- ------------------------------------------------------------------------------------------ personas

-- Create a persona (the merchant provisioned), or, for an Idempotency-Key already used by this merchant,
-- answer the persona it created: `replayed` for the same request, `persona_idempotency_conflict` for another
-- one, `persona_not_found` once that persona is deleted. Concurrent creates with one key: the second waits
-- for the first's insert (ON CONFLICT) and replays it.
CREATE FUNCTION genjobs_create_persona_v1(p_merchant_id text, p_name text, p_description text, p_product_name text,
                                          p_character_type text, p_idempotency_key text, p_request_hash text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_persona personas%ROWTYPE;
BEGIN
    INSERT INTO merchants (id) VALUES (p_merchant_id) ON CONFLICT (id) DO NOTHING;
    INSERT INTO personas (merchant_id, name, description, product_name, character_type, idempotency_key,
                          request_hash)
    VALUES (p_merchant_id, p_name, p_description, p_product_name, p_character_type, p_idempotency_key,
            p_request_hash)
    ON CONFLICT (merchant_id, idempotency_key) DO NOTHING
    RETURNING * INTO v_persona;
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'created', 'persona', to_jsonb(v_persona));
    END IF;
    SELECT * INTO v_persona FROM personas WHERE merchant_id = p_merchant_id AND idempotency_key = p_idempotency_key;
    IF v_persona.request_hash IS DISTINCT FROM p_request_hash THEN
        RETURN jsonb_build_object('outcome', 'persona_idempotency_conflict', 'persona_id', v_persona.id);
    END IF;
    IF v_persona.deleted_at IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', v_persona.id);
    END IF;
    RETURN jsonb_build_object('outcome', 'replayed', 'persona', to_jsonb(v_persona));
END
$$;

-- ------------------------------------------------------------------------------------------ prompt templates

-- A new, inactive version of the template `p_name` of a job type (versions are never edited in place). The
-- job type's transaction-level advisory lock orders concurrent creates and activations: versions never
-- collide and activation is atomic.
CREATE FUNCTION genjobs_create_template_v1(p_job_type text, p_name text, p_template text, p_variables text[],
                                           p_defaults jsonb, p_actor text, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_template prompt_templates%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('genjobs:prompt_templates:' || p_job_type));
    INSERT INTO prompt_templates (job_type, name, version, template, variables, variable_defaults, is_active,
                                  created_at)
    SELECT p_job_type, p_name, coalesce(max(t.version), 0) + 1, p_template, p_variables, p_defaults, false, p_now
      FROM prompt_templates t WHERE t.job_type = p_job_type AND t.name = p_name
    RETURNING * INTO v_template;
    PERFORM genjobs_audit_v1(p_actor, 'prompt_template.create', 'prompt_template', v_template.id::text, NULL,
                             to_jsonb(v_template), p_now);
    RETURN jsonb_build_object('outcome', 'created', 'template', to_jsonb(v_template));
END
$$;

-- Make a template the one active template of its job type. Under the job type's advisory lock each
-- statement sees the previous holder's commit, so N concurrent activations apply one after another and
-- exactly one template ends active (the unique index prompt_templates_one_active_idx is the backstop).
-- Outcomes: activated, unchanged (it already was), template_not_found.
CREATE FUNCTION genjobs_activate_template_v1(p_template_id uuid, p_actor text, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_template prompt_templates%ROWTYPE;
    v_previous uuid;
BEGIN
    SELECT * INTO v_template FROM prompt_templates WHERE id = p_template_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'template_not_found', 'template_id', p_template_id);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('genjobs:prompt_templates:' || v_template.job_type));
    SELECT id INTO v_previous FROM prompt_templates WHERE job_type = v_template.job_type AND is_active;
    IF v_previous = p_template_id THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'template', to_jsonb(v_template));
    END IF;
    UPDATE prompt_templates SET is_active = false WHERE job_type = v_template.job_type AND is_active;
    UPDATE prompt_templates SET is_active = true WHERE id = p_template_id RETURNING * INTO v_template;
    PERFORM genjobs_audit_v1(p_actor, 'prompt_template.activate', 'prompt_template', p_template_id::text,
                             jsonb_build_object('job_type', v_template.job_type, 'active_template_id', v_previous),
                             jsonb_build_object('job_type', v_template.job_type, 'active_template_id', p_template_id),
                             p_now);
    RETURN jsonb_build_object('outcome', 'activated', 'previous_template_id', v_previous,
                              'template', to_jsonb(v_template));
END
$$;

-- ------------------------------------------------------------------------------------------ merchants

-- Set a merchant's overrides: `p_set_limit` / `p_set_budget` say which one the request names (a null value
-- clears it: the deployment default / no budget). Read by the next start (it locks the merchant's row too).
-- Outcomes: updated, unchanged, merchant_not_found.
CREATE FUNCTION genjobs_set_merchant_settings_v1(p_merchant_id text, p_set_limit boolean, p_limit integer,
                                                 p_set_budget boolean, p_budget numeric, p_actor text,
                                                 p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before merchants%ROWTYPE;
    v_after  merchants%ROWTYPE;
BEGIN
    SELECT * INTO v_before FROM merchants WHERE id = p_merchant_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'merchant_not_found', 'merchant_id', p_merchant_id);
    END IF;
    UPDATE merchants
       SET hourly_generation_limit = CASE WHEN p_set_limit THEN p_limit ELSE hourly_generation_limit END,
           monthly_budget_usd = CASE WHEN p_set_budget THEN p_budget ELSE monthly_budget_usd END,
           updated_at = p_now
     WHERE id = p_merchant_id
    RETURNING * INTO v_after;
    IF (v_before.hourly_generation_limit, v_before.monthly_budget_usd)
       IS NOT DISTINCT FROM (v_after.hourly_generation_limit, v_after.monthly_budget_usd) THEN
        RETURN jsonb_build_object('outcome', 'unchanged');
    END IF;
    PERFORM genjobs_audit_v1(p_actor, 'merchant.update_settings', 'merchant', p_merchant_id,
                             jsonb_build_object('hourly_generation_limit', v_before.hourly_generation_limit,
                                                'monthly_budget_usd', v_before.monthly_budget_usd),
                             jsonb_build_object('hourly_generation_limit', v_after.hourly_generation_limit,
                                                'monthly_budget_usd', v_after.monthly_budget_usd),
                             p_now);
    RETURN jsonb_build_object('outcome', 'updated');
END
$$;

-- ------------------------------------------------------------------------------------------ retry

-- An operator starts a failed or canceled job again: a new queued job with `retry_of` = the old one, the same
-- persona, type, count or states, template, variables and model (and the estimate it started with). The
-- hourly limit and the regeneration cooldown are not checked (an operator's decision); the persona rules
-- (not deleted, active for state videos, one active job) and the monthly budget are, as in a start.
-- Outcomes: created, not_found, not_retryable, persona_not_found, persona_not_active, persona_busy,
-- budget_exceeded.
CREATE FUNCTION genjobs_retry_job_v1(p_job_id uuid, p_actor text, p_now timestamptz, p_max_retries integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_old       generation_jobs%ROWTYPE;
    v_merchant  merchants%ROWTYPE;
    v_persona   personas%ROWTYPE;
    v_job       generation_jobs%ROWTYPE;
    v_active_id uuid;
    v_month     record;
BEGIN
    SELECT * INTO v_old FROM generation_jobs WHERE id = p_job_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- the same lock order as a start: merchant, then persona
    SELECT * INTO v_merchant FROM merchants WHERE id = v_old.merchant_id FOR UPDATE;
    IF v_old.status NOT IN ('failed', 'canceled') THEN
        RETURN jsonb_build_object('outcome', 'not_retryable', 'job_id', p_job_id, 'status', v_old.status);
    END IF;
    SELECT * INTO v_persona FROM personas WHERE id = v_old.persona_id AND deleted_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found', 'persona_id', v_old.persona_id);
    END IF;
    IF v_old.job_type = 'state_videos' AND v_persona.status <> 'active' THEN
        RETURN jsonb_build_object('outcome', 'persona_not_active', 'persona_status', v_persona.status);
    END IF;
    SELECT id INTO v_active_id FROM generation_jobs
     WHERE persona_id = v_old.persona_id AND status IN ('queued', 'processing', 'generating_videos');
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_busy', 'active_job_id', v_active_id);
    END IF;
    IF v_merchant.monthly_budget_usd IS NOT NULL THEN
        SELECT * INTO v_month FROM genjobs_month_commitment_v1(v_old.merchant_id, p_now);
        IF v_month.spent_usd + v_month.reserved_usd + v_old.estimated_cost_usd > v_merchant.monthly_budget_usd THEN
            RETURN jsonb_build_object(
                'outcome', 'budget_exceeded', 'budget_usd', v_merchant.monthly_budget_usd,
                'spent_usd', v_month.spent_usd, 'reserved_usd', v_month.reserved_usd,
                'estimated_cost_usd', v_old.estimated_cost_usd);
        END IF;
    END IF;

    INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, states_requested,
                                 prompt_template_id, prompt_variables, model_id, estimated_cost_usd,
                                 max_retries, created_at, available_at, current_step, retry_of, metadata)
    VALUES (v_old.merchant_id, v_old.persona_id, v_old.job_type, v_old.variation_count, v_old.states_requested,
            v_old.prompt_template_id, v_old.prompt_variables, v_old.model_id, v_old.estimated_cost_usd,
            p_max_retries, p_now, p_now, 'queued', v_old.id, jsonb_build_object('retried_by', p_actor))
    RETURNING * INTO v_job;
    IF v_old.job_type = 'character_variations' AND v_persona.status = 'draft' THEN
        UPDATE personas SET status = 'generating' WHERE id = v_old.persona_id;
    END IF;
    PERFORM genjobs_audit_v1(p_actor, 'job.retry', 'job', p_job_id::text,
                             jsonb_build_object('job_id', v_old.id, 'status', v_old.status,
                                                'error_code', v_old.error_code),
                             jsonb_build_object('job_id', v_job.id, 'status', v_job.status, 'retry_of', v_old.id),
                             p_now);
    RETURN jsonb_build_object('outcome', 'created', 'job', to_jsonb(v_job) || jsonb_build_object('outputs', '[]'::jsonb));
END
$$;
