-- 015: retention removes media too (issue 12, fault 9).
--
-- Retention deleted failed and canceled jobs but never their files, and a deleted persona's images and videos
-- stayed public behind the CDN forever. The maintenance sweep (genjobs.services.maintenance.apply_retention)
-- now deletes the media objects of what it removes first, then the rows: a sweep that stops between the two
-- finds the same rows next time and deletes their (already missing) objects again, which S3 answers as deleted.
--
-- genjobs_purge_personas_v1: personas deleted before `p_deleted_before` (the grace period,
-- PERSONA_PURGE_AFTER_DAYS) are purged with every job of theirs (media outputs, variations, invocations,
-- timeline and archives cascade; ledger entries stay for billing, their job_id set NULL). Rows locked by
-- someone else are skipped (SKIP LOCKED) and taken by a later sweep. A persona with an active job is never
-- purged (a delete refuses one, and a start refuses a deleted persona: 020, so there should be none).

CREATE FUNCTION genjobs_purge_personas_v1(p_persona_ids uuid[], p_deleted_before timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ids   uuid[];
    v_count integer;
BEGIN
    SELECT array_agg(due.id) INTO v_ids
      FROM (SELECT p.id FROM personas p
             WHERE p.id = ANY (p_persona_ids) AND p.deleted_at < p_deleted_before
               AND NOT EXISTS (SELECT 1 FROM generation_jobs j
                                WHERE j.persona_id = p.id AND j.status IN ('queued', 'processing', 'generating_videos'))
               FOR UPDATE SKIP LOCKED) AS due;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE personas SET approved_variation_id = NULL WHERE id = ANY (v_ids) AND approved_variation_id IS NOT NULL;
    DELETE FROM generation_jobs WHERE persona_id = ANY (v_ids);
    DELETE FROM personas WHERE id = ANY (v_ids);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- the purge sweep's scan: deleted personas, oldest deletion first
CREATE INDEX personas_deleted_idx ON personas (deleted_at) WHERE deleted_at IS NOT NULL;
