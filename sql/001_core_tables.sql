-- 001: the core tables of genjobs.
-- Conventions: uuid keys from gen_random_uuid() (core since PostgreSQL 13, no pgcrypto), timestamptz
-- everywhere, every tenant-owned row carries merchant_id so every query can filter on it.

CREATE TABLE merchants (
    id                       text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    display_name             text,
    -- NULL means "use the deployment default" (HOURLY_GENERATION_LIMIT); a value overrides it.
    hourly_generation_limit  integer CHECK (hourly_generation_limit >= 0),
    -- NULL means no monthly budget.
    monthly_budget_usd       numeric(12, 4) CHECK (monthly_budget_usd >= 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE personas (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id             text NOT NULL REFERENCES merchants (id),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description             text CHECK (length(description) <= 4000),
    product_name            text CHECK (length(product_name) <= 200),
    character_type          text CHECK (length(character_type) <= 100),
    status                  text NOT NULL DEFAULT 'draft'
                            CHECK (status IN ('draft', 'generating', 'pending_approval', 'active')),
    approved_variation_id   uuid,
    image_url               text,
    video_states            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(video_states) = 'object'),
    generation_metadata     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(generation_metadata) = 'object'),
    -- set when a character_variations job of this persona completes; drives the regeneration cooldown
    last_variations_completed_at timestamptz,
    version                 bigint NOT NULL DEFAULT 1,
    deleted_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personas_merchant_created_idx ON personas (merchant_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE prompt_templates (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_type     text NOT NULL CHECK (job_type IN ('character_variations', 'state_videos')),
    name         text NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    template     text NOT NULL,
    -- the variables the template declares; callers must supply exactly these (built-ins excepted)
    variables    text[] NOT NULL DEFAULT '{}',
    -- values for declared variables a caller may omit
    variable_defaults jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(variable_defaults) = 'object'),
    is_active    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_type, name, version)
);
-- at most one active template per job type
CREATE UNIQUE INDEX prompt_templates_one_active_idx ON prompt_templates (job_type) WHERE is_active;

CREATE TABLE model_configurations (
    model_id            text PRIMARY KEY,
    provider            text NOT NULL DEFAULT 'bedrock',
    media_type          text NOT NULL CHECK (media_type IN ('image', 'video')),
    -- what one priced unit is: one generated image, or one second of generated video
    pricing_unit        text NOT NULL CHECK (pricing_unit IN ('image', 'video_second')),
    unit_price_usd      numeric(12, 6) NOT NULL CHECK (unit_price_usd >= 0),
    default_parameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_default          boolean NOT NULL DEFAULT false,
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX model_configurations_one_default_idx ON model_configurations (media_type) WHERE is_default;

CREATE TABLE generation_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id         text NOT NULL REFERENCES merchants (id),
    persona_id          uuid NOT NULL REFERENCES personas (id),
    job_type            text NOT NULL CHECK (job_type IN ('character_variations', 'state_videos')),
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'processing', 'generating_videos',
                                          'completed', 'failed', 'canceled')),
    current_step        text,
    progress            smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    variation_count     smallint CHECK (variation_count BETWEEN 1 AND 4),
    states_requested    text[] NOT NULL DEFAULT '{}',
    states_generated    text[] NOT NULL DEFAULT '{}',
    variation_urls      text[] NOT NULL DEFAULT '{}',
    prompt              text,
    prompt_template_id  uuid REFERENCES prompt_templates (id),
    prompt_variables    jsonb NOT NULL DEFAULT '{}'::jsonb,
    model_id            text REFERENCES model_configurations (model_id),
    -- the cost the job is expected to incur (reserved against the budget while it runs)
    estimated_cost_usd  numeric(12, 6) NOT NULL DEFAULT 0 CHECK (estimated_cost_usd >= 0),
    cost_usd            numeric(12, 6) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    error_code          text,
    error_message       text,
    retry_count         integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    max_retries         integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    -- attempt fencing: each claim takes a new attempt number, and every worker write names its attempt
    attempt             integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    lease_expires_at    timestamptz,
    -- earliest time a queued job may be (re)dispatched: retry backoff
    available_at        timestamptz NOT NULL DEFAULT now(),
    dispatched_at       timestamptz,
    idempotency_key     text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash        text,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    version             bigint NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    completed_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT generation_jobs_idempotency_key UNIQUE (merchant_id, idempotency_key),
    CONSTRAINT generation_jobs_terminal_has_completed_at
        CHECK (status NOT IN ('completed', 'failed', 'canceled') OR completed_at IS NOT NULL),
    CONSTRAINT generation_jobs_failed_has_error
        CHECK (status <> 'failed' OR error_code IS NOT NULL),
    CONSTRAINT generation_jobs_variations_count
        CHECK (job_type <> 'character_variations' OR variation_count IS NOT NULL),
    CONSTRAINT generation_jobs_videos_states
        CHECK (job_type <> 'state_videos' OR cardinality(states_requested) BETWEEN 1 AND 10)
);
-- the job list, the hourly window and keyset pagination: newest first per merchant
CREATE INDEX generation_jobs_merchant_created_idx ON generation_jobs (merchant_id, created_at DESC, id DESC);
CREATE INDEX generation_jobs_persona_created_idx ON generation_jobs (persona_id, created_at DESC, id DESC);
-- one active job per persona, enforced by the database whatever the concurrency
CREATE UNIQUE INDEX generation_jobs_one_active_per_persona_idx ON generation_jobs (persona_id)
    WHERE status IN ('queued', 'processing', 'generating_videos');
-- maintenance sweeps: expired leases and lost dispatches
CREATE INDEX generation_jobs_active_lease_idx ON generation_jobs (lease_expires_at)
    WHERE status IN ('processing', 'generating_videos');
CREATE INDEX generation_jobs_queued_idx ON generation_jobs (available_at) WHERE status = 'queued';
-- retention sweeps
CREATE INDEX generation_jobs_finished_idx ON generation_jobs (status, completed_at)
    WHERE status IN ('completed', 'failed', 'canceled');

CREATE TABLE media_outputs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id            uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    kind              text NOT NULL CHECK (kind IN ('image', 'video')),
    state             text,
    s3_bucket         text NOT NULL,
    s3_key            text NOT NULL,
    url               text NOT NULL,
    content_type      text NOT NULL,
    size_bytes        bigint CHECK (size_bytes >= 0),
    width             integer CHECK (width > 0),
    height            integer CHECK (height > 0),
    duration_seconds  numeric(8, 3) CHECK (duration_seconds >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- a duplicate S3 event or a re-run of the same attempt cannot record a file twice
    UNIQUE (s3_bucket, s3_key)
);
CREATE INDEX media_outputs_job_idx ON media_outputs (job_id);

CREATE TABLE character_variations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id           uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    persona_id       uuid NOT NULL REFERENCES personas (id),
    merchant_id      text NOT NULL REFERENCES merchants (id),
    variation_index  smallint NOT NULL CHECK (variation_index >= 0),
    seed             bigint NOT NULL,
    media_output_id  uuid REFERENCES media_outputs (id) ON DELETE SET NULL,
    image_url        text NOT NULL,
    approved         boolean NOT NULL DEFAULT false,
    approved_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, variation_index)
);
CREATE INDEX character_variations_persona_idx ON character_variations (persona_id, job_id);
-- at most one approved variation per persona, whatever the concurrency
CREATE UNIQUE INDEX character_variations_one_approved_idx ON character_variations (persona_id) WHERE approved;

ALTER TABLE personas
    ADD CONSTRAINT personas_approved_variation_fk
    FOREIGN KEY (approved_variation_id) REFERENCES character_variations (id) ON DELETE SET NULL;

-- one row per state of a state_videos job and attempt: the Bedrock async invocation that makes it
CREATE TABLE video_invocations (
    job_id                uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    state                 text NOT NULL,
    attempt               integer NOT NULL,
    invocation_arn        text,
    client_request_token  text NOT NULL,
    output_s3_uri         text NOT NULL,
    status                text NOT NULL DEFAULT 'starting'
                          CHECK (status IN ('starting', 'in_progress', 'completed', 'failed')),
    failure_message       text,
    started_at            timestamptz NOT NULL DEFAULT now(),
    completed_at          timestamptz,
    PRIMARY KEY (job_id, state, attempt)
);
CREATE INDEX video_invocations_pending_idx ON video_invocations (started_at)
    WHERE status IN ('starting', 'in_progress');

CREATE TABLE job_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    merchant_id   text NOT NULL,
    event_type    text NOT NULL CHECK (event_type IN ('created', 'status_changed', 'step_changed',
                                                      'output_generated', 'retry_scheduled', 'note')),
    status        text,
    current_step  text,
    progress      smallint,
    attempt       integer,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

CREATE TABLE usage_ledger (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    job_id            uuid REFERENCES generation_jobs (id) ON DELETE SET NULL,
    -- what makes an entry unique: 'job:<job id>' for a job's cost, or the caller's key for record_usage
    usage_key         text NOT NULL CHECK (length(usage_key) BETWEEN 1 AND 300),
    billing_period    date NOT NULL,
    model_id          text,
    quantity          numeric(12, 3) NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    unit_price_usd    numeric(12, 6) NOT NULL DEFAULT 0 CHECK (unit_price_usd >= 0),
    amount_usd        numeric(12, 6) NOT NULL CHECK (amount_usd >= 0),
    details           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- a job's cost is never counted twice
    CONSTRAINT usage_ledger_once UNIQUE (merchant_id, usage_key),
    CONSTRAINT usage_ledger_period_is_month_start CHECK (billing_period = date_trunc('month', billing_period)::date)
);
CREATE INDEX usage_ledger_merchant_created_idx ON usage_ledger (merchant_id, created_at);
