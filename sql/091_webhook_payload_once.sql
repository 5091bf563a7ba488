-- 091: a webhook event's payload is built once, not once per endpoint.
--
-- genjobs_enqueue_webhooks_v1 (090) wrote its messages with one INSERT ... SELECT over the matching endpoints,
-- the payload in the select list: the job snapshot (genjobs_webhook_job_v1, with its outputs query,
-- genjobs_job_outputs_v1) was computed again for every endpoint row, inside the writer's statement. It now
-- reads the matching endpoints first (the same index probe, webhook_endpoints_merchant_idx), returns when
-- there are none (nothing else is computed), builds the payload once, and inserts one message per endpoint
-- carrying that one value.
--
-- The endpoints are read FOR KEY SHARE: the lock the foreign key check of each message takes on its endpoint
-- anyway, taken when the endpoint is chosen rather than after the insert. An endpoint deleted by a
-- transaction that commits meanwhile is then skipped (READ COMMITTED re-checks a row it waited for), where
-- 090 failed the writer's statement with a foreign key violation. Renaming, pausing or rotating an endpoint
-- (an UPDATE of no key column) does not conflict with that lock.
--
-- Replaced in place (CREATE OR REPLACE, same signature): the messages, their payloads, the count answered and
-- the pending signal are those of 090, so code and triggers that call it need no change, and a rollback to
-- 090's body changes nothing but the cost (and the race above).

CREATE OR REPLACE FUNCTION genjobs_enqueue_webhooks_v1(p_job generation_jobs, p_event_type text, p_extra jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_endpoints uuid[];
    v_data      jsonb;
BEGIN
    -- the enabled endpoints of the merchant whose filter takes the event (NULL: every event)
    SELECT array_agg(matching.id) INTO v_endpoints
      FROM (SELECT e.id FROM webhook_endpoints e
             WHERE e.merchant_id = p_job.merchant_id AND e.enabled
               AND (e.event_types IS NULL OR p_event_type = ANY (e.event_types))
               FOR KEY SHARE OF e) AS matching;
    IF v_endpoints IS NULL THEN
        RETURN 0;
    END IF;
    -- the payload, once for every endpoint
    v_data := jsonb_build_object('job', genjobs_webhook_job_v1(p_job)) || coalesce(p_extra, '{}'::jsonb);
    INSERT INTO webhook_messages (endpoint_id, merchant_id, event_type, job_id, job_version, data)
    SELECT endpoint_id, p_job.merchant_id, p_event_type, p_job.id, p_job.version, v_data
      FROM unnest(v_endpoints) AS endpoint_id;
    PERFORM set_config('genjobs.webhooks_pending', 'on', true);
    RETURN cardinality(v_endpoints);
END
$$;
