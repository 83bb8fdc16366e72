-- accrual: reward rules, registered orders and the shared per-minute request counter.
-- Every table lives in schema accrual, so services can share one database.

CREATE SCHEMA accrual;

-- A rule rewards every good whose description contains `match`: `reward` percent of
-- its price ('%') or `reward` points ('pt'). Rewards are kept in hundredths.
CREATE TABLE accrual.rules (
    match             text PRIMARY KEY CHECK (octet_length(match) BETWEEN 1 AND 256),
    reward_hundredths bigint NOT NULL CHECK (reward_hundredths > 0),
    reward_type       text NOT NULL CHECK (reward_type IN ('%', 'pt')),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- A registered order. Its outcome is computed from the rules when it is registered and
-- shown after the processing delay: REGISTERED for the first half, PROCESSING for the
-- second, then PROCESSED (with accrual_kop) or INVALID (no good matched any rule).
CREATE TABLE accrual.orders (
    number        text PRIMARY KEY CHECK (number ~ '^[0-9]{1,64}$'),
    goods         jsonb NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('PROCESSED', 'INVALID')),
    accrual_kop   bigint CHECK (accrual_kop >= 0),
    registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ready_at      timestamptz NOT NULL,
    CHECK ((outcome = 'PROCESSED') = (accrual_kop IS NOT NULL))
);

-- Requests to GET /api/orders/{number} per minute, shared by every worker and instance.
CREATE TABLE accrual.rate_windows (
    window_start timestamptz PRIMARY KEY,
    requests     bigint NOT NULL
);
