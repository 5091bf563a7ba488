-- 011: video polling. A state whose Bedrock async invocation has not reported through S3 within a
-- threshold is checked with GetAsyncInvoke; last_polled_at spaces the checks and lets concurrent sweeps
-- split the work (each claims rows with FOR UPDATE SKIP LOCKED and stamps them before calling Bedrock).

ALTER TABLE video_invocations ADD COLUMN last_polled_at timestamptz;
