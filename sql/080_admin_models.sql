-- 080: operators change the model registry (GET/PATCH /admin/models), and a job keeps the price it started
-- with.
--
-- A job now records its model's unit price when it is created (a BEFORE INSERT trigger, so every way a job
-- is inserted — genjobs_start_job_v4, genjobs_retry_job_v1 — records it), and what its outputs cost
-- (genjobs_job_cost_v1) is priced with that. genjobs_job_cost_v1 is replaced in place: for a job without a
-- recorded price (created before this migration, or by code that predates it) it answers exactly what it did
-- (the model's current price), so old and new code agree during a deploy.

ALTER TABLE generation_jobs ADD COLUMN unit_price_usd numeric(12, 6) CHECK (unit_price_usd >= 0);

CREATE FUNCTION generation_jobs_stamp_price() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.unit_price_usd IS NULL AND NEW.model_id IS NOT NULL THEN
        NEW.unit_price_usd := (SELECT m.unit_price_usd FROM model_configurations m WHERE m.model_id = NEW.model_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER generation_jobs_stamp_price
    BEFORE INSERT ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION generation_jobs_stamp_price();

CREATE OR REPLACE FUNCTION genjobs_job_cost_v1(p_job generation_jobs, OUT quantity numeric, OUT unit_price_usd numeric,
                                               OUT amount_usd numeric)
LANGUAGE sql STABLE AS $$
    SELECT q.quantity, q.unit_price_usd, q.quantity * q.unit_price_usd
      FROM (SELECT coalesce(p_job.unit_price_usd, m.unit_price_usd, 0) AS unit_price_usd,
                   CASE WHEN p_job.job_type = 'character_variations'
                        THEN (SELECT count(*) FROM character_variations v WHERE v.job_id = p_job.id)::numeric
                        ELSE cardinality(p_job.states_generated)
                             * genjobs_video_seconds_v1(p_job.metadata, m.default_parameters) END AS quantity
              FROM (SELECT 1) AS one
              LEFT JOIN model_configurations m ON m.model_id = p_job.model_id) AS q
$$;

-- An operator's change of one model: `enabled`, `default` (true makes it the one default of its kind, in
-- the same transaction), `unit_price_usd` (effective for jobs created afterwards). Refused: a default that
-- is disabled or eol, disabling the default (choose another default first). Every change is audited.
-- Outcomes: updated, unchanged, model_not_found, model_not_usable, default_not_disableable.
CREATE FUNCTION genjobs_update_model_v1(p_model_id text, p_enabled boolean, p_make_default boolean,
                                        p_unit_price numeric, p_price_source text, p_actor text,
                                        p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_before model_configurations%ROWTYPE;
    v_after  model_configurations%ROWTYPE;
    v_enabled boolean;
BEGIN
    SELECT * INTO v_before FROM model_configurations WHERE model_id = p_model_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'model_not_found', 'model_id', p_model_id);
    END IF;
    v_enabled := coalesce(p_enabled, v_before.enabled);
    IF coalesce(p_make_default, false) AND (NOT v_enabled OR v_before.lifecycle = 'eol') THEN
        RETURN jsonb_build_object('outcome', 'model_not_usable', 'model_id', p_model_id,
                                  'enabled', v_enabled, 'lifecycle', v_before.lifecycle);
    END IF;
    IF v_before.is_default AND NOT v_enabled THEN
        RETURN jsonb_build_object('outcome', 'default_not_disableable', 'model_id', p_model_id);
    END IF;
    IF coalesce(p_make_default, false) AND NOT v_before.is_default THEN
        -- one default per kind (model_configurations_one_default_idx): the old one first, same transaction
        UPDATE model_configurations SET is_default = false, updated_at = p_now
         WHERE media_type = v_before.media_type AND is_default;
    END IF;
    UPDATE model_configurations
       SET enabled = v_enabled,
           is_default = v_before.is_default OR coalesce(p_make_default, false),
           unit_price_usd = coalesce(p_unit_price, unit_price_usd),
           price_source = CASE WHEN p_unit_price IS NULL THEN price_source
                               ELSE coalesce(p_price_source, 'set by an operator (' || p_actor || ')') END,
           updated_at = p_now
     WHERE model_id = p_model_id
    RETURNING * INTO v_after;
    IF (v_before.enabled, v_before.is_default, v_before.unit_price_usd, v_before.price_source)
       IS NOT DISTINCT FROM (v_after.enabled, v_after.is_default, v_after.unit_price_usd, v_after.price_source) THEN
        RETURN jsonb_build_object('outcome', 'unchanged');
    END IF;
    PERFORM genjobs_audit_v1(p_actor, 'model.update', 'model', p_model_id,
                             jsonb_build_object('enabled', v_before.enabled, 'default', v_before.is_default,
                                                'unit_price_usd', v_before.unit_price_usd),
                             jsonb_build_object('enabled', v_after.enabled, 'default', v_after.is_default,
                                                'unit_price_usd', v_after.unit_price_usd),
                             p_now);
    RETURN jsonb_build_object('outcome', 'updated');
END
$$;
