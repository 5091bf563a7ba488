-- 006: approving a character variation, race-safe, in one round trip.
--
-- genjobs_approve_variation() first locks the persona's row, which serializes every approval of one
-- persona. In READ COMMITTED each statement of a plpgsql function takes a fresh snapshot, so the reads
-- after the lock see every approval committed by the previous lock holder (a single plain statement would
-- not: its snapshot is taken before it waits for the lock). Concurrent approvals of different variations
-- therefore apply one after the other: the last one wins, and at every moment exactly one variation of
-- the persona is approved and the persona points at it (the partial unique index
-- character_variations_one_approved_idx backs this up).
--
-- Rules, in order:
--   * the persona exists, belongs to the merchant and is not deleted       -> else 'persona_not_found'
--   * the variation belongs to that persona and merchant                   -> else 'variation_not_found'
--   * approving the approved variation again changes nothing               -> 'unchanged'
--   * the variation's job completed                                         -> else 'job_not_completed'
--   * no state-videos job of the persona is running (it animates the
--     currently approved image)                                              -> else 'videos_in_progress'
-- Then: earlier approvals of the persona are cleared, the variation is approved, and the persona gets
-- approved_variation_id, image_url and status 'active'. When the approval moves to a different variation,
-- the persona's video_states are cleared: they animate the previous image.
-- The answer is a jsonb object whose "outcome" says what happened; "persona" is the persona row.

CREATE FUNCTION genjobs_approve_variation(
    p_merchant_id  text,
    p_persona_id   uuid,
    p_variation_id uuid,
    p_now          timestamptz
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_persona     personas%ROWTYPE;
    v_variation   character_variations%ROWTYPE;
    v_job_status  text;
    v_active_id   uuid;
    v_previous    uuid;
BEGIN
    SELECT * INTO v_persona FROM personas
     WHERE id = p_persona_id AND merchant_id = p_merchant_id AND deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'persona_not_found');
    END IF;

    SELECT * INTO v_variation FROM character_variations
     WHERE id = p_variation_id AND persona_id = p_persona_id AND merchant_id = p_merchant_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'variation_not_found');
    END IF;

    IF v_variation.approved AND v_persona.approved_variation_id = p_variation_id
       AND v_persona.status = 'active' THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'persona', to_jsonb(v_persona));
    END IF;

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

    RETURN jsonb_build_object('outcome', 'approved', 'previous_variation_id', v_previous,
                              'persona', to_jsonb(v_persona));
END
$$;
