-- 093: the sliding hour and a job's cost keep their plans between calls (issue 18).
--
-- genjobs_rate_window_v1 (013) and genjobs_job_cost_v1 (013, 080) were LANGUAGE sql functions taking a row
-- or returning a record: called from the PL/pgSQL state changes (start, complete, the partial charges) they
-- are not inlined, and PostgreSQL 16 plans the statements of a non-inlined SQL function on every call.
-- Measured with track_functions = 'all' over 1,500 start -> claim -> complete jobs in one backend (the
-- bench's 3-step work): 623 us and 691 us of self time per job for these two functions, mostly planning.
-- As PL/pgSQL the same statements are planned once per backend (plpgsql's cached plans: no prepared
-- statement on the connection, nothing RDS Proxy pins).
--
-- Replaced in place (same signatures, same answers): the start's, the usage routes' and the complete's
-- callers need no change. The window's `frees_at` keeps its definition: the created_at + 1 hour of the job
-- at position max(used - limit, 0) of the window, oldest first (NULL for an empty window).

CREATE OR REPLACE FUNCTION genjobs_rate_window_v1(p_merchant_id text, p_default_limit integer, p_now timestamptz,
                                                  OUT hourly_limit integer, OUT used integer,
                                                  OUT frees_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    hourly_limit := coalesce((SELECT m.hourly_generation_limit FROM merchants m WHERE m.id = p_merchant_id),
                             p_default_limit);
    SELECT count(*)::integer INTO used
      FROM generation_jobs j
     WHERE j.merchant_id = p_merchant_id AND j.created_at > p_now - interval '1 hour';
    SELECT j.created_at + interval '1 hour' INTO frees_at
      FROM generation_jobs j
     WHERE j.merchant_id = p_merchant_id AND j.created_at > p_now - interval '1 hour'
     ORDER BY j.created_at
    OFFSET greatest(used - hourly_limit, 0) LIMIT 1;
END
$$;

CREATE OR REPLACE FUNCTION genjobs_job_cost_v1(p_job generation_jobs, OUT quantity numeric,
                                               OUT unit_price_usd numeric, OUT amount_usd numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_price numeric;
    v_parameters jsonb;
BEGIN
    SELECT m.unit_price_usd, m.default_parameters INTO v_price, v_parameters
      FROM model_configurations m WHERE m.model_id = p_job.model_id;
    unit_price_usd := coalesce(p_job.unit_price_usd, v_price, 0);
    IF p_job.job_type = 'character_variations' THEN
        SELECT count(*)::numeric INTO quantity FROM character_variations v WHERE v.job_id = p_job.id;
    ELSE
        quantity := cardinality(p_job.states_generated) * genjobs_video_seconds_v1(p_job.metadata, v_parameters);
    END IF;
    amount_usd := quantity * unit_price_usd;
END
$$;
