-- 012: the month's spend per merchant (GET /usage, the budget check in genjobs_start_job) read from an
-- index alone instead of every ledger row the merchant ever had. Measured by `make bench PART=scale`:
-- usage at 1M jobs went from 0.99 ms to 0.24 ms.

CREATE INDEX usage_ledger_merchant_period_idx ON usage_ledger (merchant_id, billing_period) INCLUDE (amount_usd);
