-- 092: the registry's lifecycle facts, re-read from AWS's pages on 2026-12-01 (issue 14).
--
-- 040 recorded Titan Image Generator v2 as "lifecycle unknown" and Nova Canvas from third-party copies. The
-- lifecycle pages settle both, and Stable Image Core now has a model card:
--   [legacy]   https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle-legacy.html ("applies to all
--              models launched on Amazon Bedrock before September 7, 2026"), "Models that have reached EOL ...
--              They have been removed from the Regions listed, and requests to them fail": Nova Canvas
--              amazon.nova-canvas-v1:0, Nova Reel amazon.nova-reel-v1:0 and amazon.nova-reel-v1:1, "Legacy
--              date: March 30, 2026", "EOL date: September 30, 2026". Its scheduled-EOL table names no
--              Stability AI or Luma model.
--   [lifecycle] https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html (Legacy table): "Titan
--              Image Generator G1 v2 - Model ID: amazon.titan-image-generator-v2:0 - Regions: us-east-1,
--              us-west-2 - Legacy date: December 30, 2025 - EOL date: June 30, 2026".
--   [core]     https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-stability-ai-stable-image-core-1-0.html:
--              "Model EOL date: N/A", "Model lifecycle: Active"; stability.stable-image-core-v1:1, us-west-2.
--   [ray2]     https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-luma-ai-ray2.html: "Model
--              lifecycle: Active", "Model EOL date: N/A"; luma.ray-v2:0, us-west-2 only, In-Region only.
--   [regions]  https://docs.aws.amazon.com/bedrock/latest/userguide/models-region-compatibility.html: "Stable
--              Image Ultra V1:1" and "Sd3.5 Large" supported in us-west-2; neither has a model card nor appears
--              in a Legacy or EOL table: recorded active from these pages, confirmed by the daily check.
-- No other video-generation model of Amazon Bedrock is Active on 2026-12-01: the only video-output entries of
-- [regions] are Luma Ray2 and Nova Reel (EOL); TwelveLabs' models take video as input. The Nova Reel row stays
-- (jobs reference it, its adapter stays tested) and a new video family is one row plus an adapter.
--
-- Only rows the daily lifecycle check has not read yet change (lifecycle_checked_at IS NULL): Bedrock's own
-- answer, once recorded, is newer than these pages. Prices, enabled and default are an operator's and are not
-- touched.

UPDATE model_configurations
   SET lifecycle = 'eol', lifecycle_eol_at = '2026-06-30T00:00:00Z',
       lifecycle_source = 'https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html: Legacy 2025-12-30, EOL 2026-06-30; read 2026-12-01'
 WHERE model_id = 'amazon.titan-image-generator-v2:0' AND lifecycle_checked_at IS NULL;

UPDATE model_configurations
   SET lifecycle = 'eol', lifecycle_eol_at = '2026-09-30T00:00:00Z',
       lifecycle_source = 'https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle-legacy.html: reached EOL 2026-09-30 (Legacy since 2026-03-30); read 2026-12-01'
 WHERE model_id IN ('amazon.nova-canvas-v1:0', 'amazon.nova-reel-v1:1') AND lifecycle_checked_at IS NULL;

UPDATE model_configurations
   SET lifecycle = 'active',
       lifecycle_source = 'https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-stability-ai-stable-image-core-1-0.html: Model lifecycle Active, EOL N/A; read 2026-12-01'
 WHERE model_id = 'stability.stable-image-core-v1:1' AND lifecycle_checked_at IS NULL;

UPDATE model_configurations
   SET lifecycle = 'active',
       lifecycle_source = 'https://docs.aws.amazon.com/bedrock/latest/userguide/models-region-compatibility.html: supported in us-west-2; no model card, in no Legacy/EOL table of model-lifecycle-legacy.html; read 2026-12-01'
 WHERE model_id IN ('stability.stable-image-ultra-v1:1', 'stability.sd3-5-large-v1:0')
   AND lifecycle_checked_at IS NULL;
