-- 003: reporting views. Each filters on merchant_id where it is tenant data, so callers can add
-- `WHERE merchant_id = %s` and use the underlying indexes.

CREATE VIEW merchant_statistics AS
SELECT m.id AS merchant_id,
       m.hourly_generation_limit,
       m.monthly_budget_usd,
       (SELECT count(*) FROM personas p WHERE p.merchant_id = m.id AND p.deleted_at IS NULL) AS persona_count,
       count(j.id) AS job_count,
       count(j.id) FILTER (WHERE j.status = 'completed') AS completed_jobs,
       count(j.id) FILTER (WHERE j.status = 'failed') AS failed_jobs,
       count(j.id) FILTER (WHERE j.status IN ('queued', 'processing', 'generating_videos')) AS active_jobs,
       (SELECT coalesce(sum(u.amount_usd), 0) FROM usage_ledger u WHERE u.merchant_id = m.id) AS total_cost_usd,
       (SELECT coalesce(sum(u.amount_usd), 0) FROM usage_ledger u
         WHERE u.merchant_id = m.id
           AND u.billing_period = date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS cost_this_month_usd,
       max(j.created_at) AS last_job_at
FROM merchants m
LEFT JOIN generation_jobs j ON j.merchant_id = m.id
GROUP BY m.id;

CREATE VIEW daily_job_stats AS
SELECT (j.created_at AT TIME ZONE 'UTC')::date AS day,
       j.merchant_id,
       j.job_type,
       count(*) AS jobs,
       count(*) FILTER (WHERE j.status = 'completed') AS completed,
       count(*) FILTER (WHERE j.status = 'failed') AS failed,
       count(*) FILTER (WHERE j.status = 'canceled') AS canceled,
       avg(extract(epoch FROM (j.completed_at - j.started_at)))
           FILTER (WHERE j.status = 'completed') AS avg_duration_seconds,
       sum(j.cost_usd) AS cost_usd
FROM generation_jobs j
GROUP BY 1, 2, 3;

CREATE VIEW active_jobs AS
SELECT j.id AS job_id,
       j.merchant_id,
       j.persona_id,
       j.job_type,
       j.status,
       j.current_step,
       j.progress,
       j.attempt,
       j.retry_count,
       j.max_retries,
       j.lease_expires_at,
       CASE
           WHEN j.status = 'queued' THEN 'waiting'
           WHEN j.lease_expires_at IS NULL THEN 'unleased'
           WHEN j.lease_expires_at < now() THEN 'expired'
           ELSE 'healthy'
       END AS lease_health,
       now() - j.created_at AS age,
       j.created_at,
       j.updated_at
FROM generation_jobs j
WHERE j.status IN ('queued', 'processing', 'generating_videos');

CREATE VIEW model_stats AS
SELECT mc.model_id,
       mc.media_type,
       mc.pricing_unit,
       mc.unit_price_usd,
       mc.enabled,
       count(j.id) AS jobs,
       count(j.id) FILTER (WHERE j.status = 'completed') AS completed,
       count(j.id) FILTER (WHERE j.status = 'failed') AS failed,
       coalesce(sum(j.cost_usd), 0) AS cost_usd,
       avg(extract(epoch FROM (j.completed_at - j.started_at)))
           FILTER (WHERE j.status = 'completed') AS avg_duration_seconds
FROM model_configurations mc
LEFT JOIN generation_jobs j ON j.model_id = mc.model_id
GROUP BY mc.model_id;

CREATE VIEW recent_jobs_with_outputs AS
SELECT j.id AS job_id,
       j.merchant_id,
       j.persona_id,
       j.job_type,
       j.status,
       j.progress,
       j.cost_usd,
       j.created_at,
       j.completed_at,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', o.id, 'kind', o.kind, 'state', o.state,
                                                     'url', o.url, 'content_type', o.content_type)
                                  ORDER BY o.created_at)
                 FROM media_outputs o WHERE o.job_id = j.id), '[]'::jsonb) AS outputs
FROM generation_jobs j
WHERE j.created_at > now() - interval '7 days';
