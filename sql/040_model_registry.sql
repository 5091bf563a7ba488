-- 040: models are rows of a registry. One adapter per model family serves them (genjobs.adapters.bedrock);
-- a model of a known family is added, priced, enabled, made the default or retired by changing its row.
--
-- model_configurations gains: family (which adapter), name, region (where Bedrock serves it: a runtime client
-- per region), price_resolution (a video price is per second at one resolution) and price_source (where the
-- price was read, and when), lifecycle (active / legacy / eol as Bedrock reports it; NULL until known),
-- lifecycle_checked_at, lifecycle_eol_at and lifecycle_source. A default must be enabled, one per kind (the
-- index of 001).
--
-- Sources, read on 2026-12-01 (the day this migration was written):
--   [lifecycle] https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html (states; modelLifecycle
--               in GetFoundationModel) and the model cards:
--   [reel]      https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-amazon-nova-reel.html:
--               "Model EOL date: 30 September 2026", "Model lifecycle: Legacy (certain regions)" -> eol today.
--   [canvas]    amazon.nova-canvas-v1:0: Legacy with EOL 2026-09-30 (the lifecycle page's legacy table as quoted
--               by third-party trackers; the English model card was not retrievable) -> eol today.
--   [ray2]      https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-luma-ai-ray2.html:
--               "Model lifecycle: Active", "Model EOL date: N/A", launched Jan 23, 2025.
--   [luma]      https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-luma.html: luma.ray-v2:0,
--               StartAsyncInvoke only; duration "5s"|"9s", resolution "540p"|"720p", aspect_ratio, loop.
--   [stability] https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-stability-diffusion.html
--               (Stable Image Ultra, Stable Image Core, SD3.5 Large are the supported Stability models; "support
--               for all other Stability AI models is being deprecated"); request/response:
--               model-parameters-diffusion-stable-ultra-text-image-request-response.html,
--               model-parameters-diffusion-stable-image-core-text-image-request-response.html,
--               model-parameters-diffusion-3-5-large.html. The Stability model cards were not retrievable:
--               their lifecycle is recorded as active from that page and confirmed by the daily check.
--   [titan]     amazon.titan-image-generator-v2:0: no model card or lifecycle entry was retrievable; the row
--               stays, disabled, lifecycle unknown (NULL) until the daily check reads it.
--   [pricing]   https://aws.amazon.com/bedrock/pricing/ renders its prices client-side; the numbers of the
--               Amazon models are those migration 004 recorded (read 2026-11). The Stability and Luma numbers
--               could not be read from an AWS page on 2026-12-01: price_source says so, and an operator must
--               confirm them before relying on the costs they produce.
-- Regions: Stability AI and Luma models are served in us-west-2 (the request examples of [stability] use
-- region_name='us-west-2'); Nova Canvas, Nova Reel and Titan Image v2 in us-east-1 (migration 004).
--
-- genjobs_start_job_v4 supersedes genjobs_start_job_v3 (020): it takes the model asked for (NULL: the kind's
-- default) and refuses an unknown, disabled, wrong-kind (model_not_allowed) or eol (model_eol) model before
-- anything is queued. genjobs_claim_job_v2 supersedes genjobs_claim_job_v1 (013): the claim also names the
-- model's family and region. genjobs_record_model_lifecycle_v1 is the daily check's one write. The cost rules
-- (genjobs_video_seconds_v1, genjobs_job_cost_v1 of 013) are unchanged: every family's default parameters carry
-- `durationSeconds` (the adapters translate it to the model's own field), and a video row's price is per second
-- at its price_resolution, which its default parameters select.

ALTER TABLE model_configurations
    ADD COLUMN family text,
    ADD COLUMN name text,
    ADD COLUMN region text,
    ADD COLUMN price_resolution text,
    ADD COLUMN price_source text,
    ADD COLUMN lifecycle text CHECK (lifecycle IN ('active', 'legacy', 'eol')),
    ADD COLUMN lifecycle_checked_at timestamptz,
    ADD COLUMN lifecycle_eol_at timestamptz,
    ADD COLUMN lifecycle_source text;

-- the three rows of 004 are past their EOL date: kept (jobs reference them), disabled, not defaults
UPDATE model_configurations SET is_default = false;
UPDATE model_configurations
   SET family = 'nova_canvas', name = 'Amazon Nova Canvas', region = 'us-east-1', enabled = false,
       lifecycle = 'eol', lifecycle_eol_at = '2026-09-30T00:00:00Z',
       lifecycle_source = 'model lifecycle page (legacy table), EOL 2026-09-30; read 2026-12-01',
       price_source = 'https://aws.amazon.com/bedrock/pricing/ (Amazon, standard quality up to 1024x1024), read 2026-11 (migration 004)'
 WHERE model_id = 'amazon.nova-canvas-v1:0';
UPDATE model_configurations
   SET family = 'titan_image', name = 'Amazon Titan Image Generator v2', region = 'us-east-1', enabled = false,
       lifecycle = NULL,
       lifecycle_source = 'no model card retrievable on 2026-12-01; the daily check records it',
       price_source = 'https://aws.amazon.com/bedrock/pricing/ (Amazon, standard quality up to 1024x1024), read 2026-11 (migration 004)'
 WHERE model_id = 'amazon.titan-image-generator-v2:0';
UPDATE model_configurations
   SET family = 'nova_reel', name = 'Amazon Nova Reel', region = 'us-east-1', enabled = false,
       price_resolution = '720p', lifecycle = 'eol', lifecycle_eol_at = '2026-09-30T00:00:00Z',
       lifecycle_source = 'https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-amazon-nova-reel.html: EOL 30 September 2026; read 2026-12-01',
       price_source = 'https://aws.amazon.com/bedrock/pricing/ (Amazon, 720p 24 fps per second), read 2026-11 (migration 004)'
 WHERE model_id = 'amazon.nova-reel-v1:1';

INSERT INTO model_configurations (model_id, family, name, provider, region, media_type, pricing_unit,
                                  unit_price_usd, price_resolution, price_source, default_parameters, is_default,
                                  enabled, lifecycle, lifecycle_source) VALUES
    ('stability.stable-image-core-v1:1', 'stability_image', 'Stability AI Stable Image Core', 'bedrock',
     'us-west-2', 'image', 'image', 0.040000, NULL,
     'UNCONFIRMED: not readable from an AWS page on 2026-12-01 (aws.amazon.com/bedrock/pricing renders prices client-side); confirm before relying on costs',
     '{"aspect_ratio": "1:1", "output_format": "png"}', true, true, 'active',
     'model-parameters-stability-diffusion.html lists it as supported; read 2026-12-01'),
    ('stability.stable-image-ultra-v1:1', 'stability_image', 'Stability AI Stable Image Ultra', 'bedrock',
     'us-west-2', 'image', 'image', 0.140000, NULL,
     'UNCONFIRMED: not readable from an AWS page on 2026-12-01 (aws.amazon.com/bedrock/pricing renders prices client-side); confirm before relying on costs',
     '{"aspect_ratio": "1:1", "output_format": "png"}', false, true, 'active',
     'model-parameters-stability-diffusion.html lists it as supported; read 2026-12-01'),
    ('stability.sd3-5-large-v1:0', 'stability_image', 'Stability AI Stable Diffusion 3.5 Large', 'bedrock',
     'us-west-2', 'image', 'image', 0.080000, NULL,
     'UNCONFIRMED: not readable from an AWS page on 2026-12-01 (aws.amazon.com/bedrock/pricing renders prices client-side); confirm before relying on costs',
     '{"aspect_ratio": "1:1", "output_format": "png"}', false, true, 'active',
     'model-parameters-diffusion-3-5-large.html; model-parameters-stability-diffusion.html lists it as supported; read 2026-12-01'),
    ('luma.ray-v2:0', 'luma_ray', 'Luma AI Ray2', 'bedrock',
     'us-west-2', 'video', 'video_second', 1.500000, '720p',
     'UNCONFIRMED: per second at 720p; not readable from an AWS page on 2026-12-01 (Marketplace-billed, aws.amazon.com/bedrock/pricing renders prices client-side); confirm before relying on costs',
     '{"durationSeconds": 5, "resolution": "720p", "aspect_ratio": "16:9", "loop": false}', true, true, 'active',
     'https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-luma-ai-ray2.html: Model lifecycle Active, EOL N/A; read 2026-12-01');

-- every row from now on names its adapter and its region; a default is enabled
ALTER TABLE model_configurations
    ALTER COLUMN family SET NOT NULL,
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN region SET NOT NULL,
    ADD CONSTRAINT model_configurations_known_family
        CHECK (family IN ('nova_canvas', 'titan_image', 'stability_image', 'nova_reel', 'luma_ray')),
    ADD CONSTRAINT model_configurations_family_kind
        CHECK ((media_type = 'image') = (family IN ('nova_canvas', 'titan_image', 'stability_image'))),
    ADD CONSTRAINT model_configurations_default_enabled CHECK (NOT is_default OR enabled),
    ADD CONSTRAINT model_configurations_video_resolution
        CHECK (pricing_unit <> 'video_second' OR price_resolution IS NOT NULL);

-- The ids a merchant may choose for a kind (what a refusal names).
CREATE FUNCTION genjobs_allowed_models_v1(p_kind text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(model_id ORDER BY is_default DESC, model_id), '{}')
      FROM model_configurations
     WHERE media_type = p_kind AND enabled AND lifecycle IS DISTINCT FROM 'eol'
$$;

-- The daily lifecycle check's write for one model: its lifecycle as Bedrock reports it now. It never touches
-- enabled or is_default (a merchant's model is never switched behind an operator's back). The answer says
-- what changed.
CREATE FUNCTION genjobs_record_model_lifecycle_v1(p_model_id text, p_lifecycle text, p_eol_at timestamptz,
                                                  p_source text, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before model_configurations%ROWTYPE;
BEGIN
    SELECT * INTO v_before FROM model_configurations WHERE model_id = p_model_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found', 'model', p_model_id);
    END IF;
    UPDATE model_configurations
       SET lifecycle = p_lifecycle, lifecycle_eol_at = coalesce(p_eol_at, lifecycle_eol_at),
           lifecycle_checked_at = p_now, lifecycle_source = p_source, updated_at = p_now
     WHERE model_id = p_model_id;
    RETURN jsonb_build_object('outcome', CASE WHEN v_before.lifecycle IS DISTINCT FROM p_lifecycle
                                              THEN 'changed' ELSE 'unchanged' END,
                              'model', p_model_id, 'before', v_before.lifecycle, 'after', p_lifecycle,
                              'eol_at', coalesce(p_eol_at, v_before.lifecycle_eol_at),
                              'enabled', v_before.enabled, 'is_default', v_before.is_default);
END
$$;

CREATE FUNCTION genjobs_start_job_v4(
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
    p_builtin_defaults     jsonb,
    p_model_id             text
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
    v_kind       text;
    v_reason     text;
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

    -- the model: the one asked for, else the kind's default; only an enabled model of the job's kind whose
    -- lifecycle is not eol may start (an eol model would fail at the provider, after the merchant was told
    -- the job is queued)
    v_kind := CASE p_job_type WHEN 'character_variations' THEN 'image' ELSE 'video' END;
    IF p_model_id IS NULL THEN
        SELECT * INTO v_model FROM model_configurations WHERE media_type = v_kind AND is_default AND enabled;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'no_model', 'job_type', p_job_type);
        END IF;
    ELSE
        SELECT * INTO v_model FROM model_configurations WHERE model_id = p_model_id;
        v_reason := CASE WHEN NOT FOUND THEN 'unknown' WHEN NOT v_model.enabled THEN 'disabled'
                         WHEN v_model.media_type <> v_kind THEN 'wrong_kind' END;
        IF v_reason IS NOT NULL THEN
            RETURN jsonb_build_object(
                'outcome', 'model_not_allowed', 'model', p_model_id, 'kind', v_kind, 'reason', v_reason,
                'allowed', genjobs_allowed_models_v1(v_kind));
        END IF;
    END IF;
    IF v_model.lifecycle = 'eol' THEN
        RETURN jsonb_build_object('outcome', 'model_eol', 'model', v_model.model_id, 'kind', v_kind,
                                  'eol_at', v_model.lifecycle_eol_at,
                                  'allowed', genjobs_allowed_models_v1(v_kind));
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

CREATE FUNCTION genjobs_claim_job_v2(p_job_id uuid, p_now timestamptz, p_lease interval) RETURNS jsonb
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
                   'model_family', m.family, 'model_region', m.region,
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

