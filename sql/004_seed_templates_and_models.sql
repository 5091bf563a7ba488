-- 004: built-in prompt templates and model configurations.
--
-- Unit prices are Amazon Bedrock on-demand prices in us-east-1 as published on
-- https://aws.amazon.com/bedrock/pricing/ (Amazon section, read 2026-11):
--   Amazon Nova Canvas        standard quality, up to 1024x1024:  USD 0.040 per image
--   Amazon Titan Image Gen v2 standard quality, up to 1024x1024:  USD 0.010 per image
--   Amazon Nova Reel          720p, 24 fps:                        USD 0.080 per second of video
-- Prices change; update them here with a new migration (never by editing this file).

INSERT INTO model_configurations (model_id, provider, media_type, pricing_unit, unit_price_usd,
                                  default_parameters, is_default, enabled) VALUES
    ('amazon.nova-canvas-v1:0', 'bedrock', 'image', 'image', 0.040000,
     '{"width": 1024, "height": 1024, "quality": "standard", "cfgScale": 6.5}', true, true),
    ('amazon.titan-image-generator-v2:0', 'bedrock', 'image', 'image', 0.010000,
     '{"width": 1024, "height": 1024, "quality": "standard", "cfgScale": 8.0}', false, true),
    ('amazon.nova-reel-v1:1', 'bedrock', 'video', 'video_second', 0.080000,
     '{"durationSeconds": 6, "fps": 24, "dimension": "1280x720"}', true, true);

-- Built-in variables, always available: name, description, product_name, character_type (from the
-- persona) and, for state videos, state. Declared variables must be supplied by the caller unless
-- variable_defaults has them; undeclared ones are refused.
INSERT INTO prompt_templates (job_type, name, version, template, variables, variable_defaults, is_active) VALUES
    ('character_variations', 'default', 1,
     'Character design sheet of ${name}, a ${character_type} who is the mascot of ${product_name}. '
     || '${description} Style: ${style}. Full body, front view, plain light background, '
     || 'consistent proportions, expressive face, high detail.',
     ARRAY['style'], '{"style": "friendly 3D cartoon"}', true),
    ('state_videos', 'default', 1,
     '${name}, the ${character_type} mascot of ${product_name}, in a seamless looping animation: ${state}. '
     || 'Static camera, plain light background, smooth natural motion.',
     ARRAY[]::text[], '{}', true);
