-- 030: the least-privilege application role, and role-level timeouts.
--
-- The request paths (every function but migrate) log in as genjobs_app (template.yaml, DB_USER); the
-- migrate function logs in as the schema owner (the role running this file: the cluster's master user on
-- a new Aurora cluster, a superuser on the embedded test server) and keeps the DDL rights.
--
-- genjobs_app:
--   * owns nothing (it creates nothing; every object belongs to the migrating role);
--   * may read and write rows (SELECT, INSERT, UPDATE, DELETE on tables and views, sequences, EXECUTE on
--     functions) and only read schema_migrations; no TRUNCATE, REFERENCES or TRIGGER, no CREATE on the
--     schema or the database, so no DDL;
--   * has no password. On Aurora/RDS it is granted rds_iam (only where that role exists): RDS Proxy logs in
--     as genjobs_app with end-to-end IAM authentication (template.yaml, DatabaseProxy DefaultAuthScheme
--     IAM_AUTH; https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-setup.html,
--     https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/UsingWithRDS.IAMDBAuth.DBAccounts.html).
--     The schema owner never gets rds_iam: with it, PostgreSQL on RDS would refuse its password, which the
--     proxy uses for the migrate function and an operator for break-glass access.
--   * has role-level timeouts, because the code never sets session state through the proxy (SET pins the
--     session): statement_timeout 15 s (the API answers within API Gateway's 30 s), lock_timeout 10 s,
--     idle_in_transaction_session_timeout 60 s.
--
-- The migrating role gets timeouts for this database only (ALTER ROLE ... IN DATABASE, so the test server's
-- superuser is untouched elsewhere): lock_timeout 5 s, because DDL waiting on a lock queues every request
-- behind it (fail the deploy fast; it can be retried), and statement_timeout 240 s, under the migrate
-- function's 300 s Lambda timeout so that the runner, not Lambda, reports the failure. A migration with
-- long DDL raises them for its own transaction only, on its first lines:
--     SET LOCAL statement_timeout = '15min';
--     SET LOCAL lock_timeout = '30s';
-- (each migration file runs in its own transaction; SET LOCAL ends with it).
--
-- Idempotent (every statement may run again) and safe against a concurrent creator of the role.
-- Requires the migrating role to be a superuser, or to have CREATEROLE (and, on PostgreSQL 16+, ADMIN on
-- genjobs_app, which the creator of the role has): Aurora's master user has both.

DO $migration$
BEGIN
    IF current_user = 'genjobs_app' THEN
        RAISE EXCEPTION 'migration 030 must run as the schema owner, not as genjobs_app (the application role)'
            USING HINT = 'template.yaml: the migrate function logs in as DatabaseUser; see docs/deploy.md';
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'genjobs_app') THEN
        BEGIN
            CREATE ROLE genjobs_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a concurrent runner (another database of the same cluster)
        END;
    END IF;

    BEGIN
        ALTER ROLE genjobs_app SET statement_timeout = '15s';
        ALTER ROLE genjobs_app SET lock_timeout = '10s';
        ALTER ROLE genjobs_app SET idle_in_transaction_session_timeout = '60s';
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'migration 030: % may not change genjobs_app (needs CREATEROLE and ADMIN on it)', current_user
            USING HINT = 'on an existing cluster, run it as the role that created genjobs_app, or grant that role ADMIN OPTION on genjobs_app; docs/deploy.md';
    END;

    -- IAM authentication on RDS/Aurora only (the role exists there, not on plain PostgreSQL). Granted only
    -- when missing, so that on an existing cluster the master user may grant it once beforehand and the
    -- schema owner need not hold ADMIN on rds_iam.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam')
       AND NOT pg_has_role('genjobs_app', 'rds_iam', 'MEMBER') THEN
        GRANT rds_iam TO genjobs_app;
    END IF;

    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET lock_timeout = %L', current_user, current_database(), '5s');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', current_user, current_database(), '240s');
END
$migration$;

GRANT USAGE ON SCHEMA public TO genjobs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO genjobs_app;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM genjobs_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO genjobs_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO genjobs_app;

-- Objects that later migrations create (always as the migrating role) are granted the same way.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO genjobs_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO genjobs_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO genjobs_app;
