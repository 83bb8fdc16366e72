-- gophermart: users, their uploaded orders, balances and withdrawals.
-- Money is integer kopecks (bigint); CHECKs are the last line of defence.
-- Every table lives in schema gophermart, so services can share one database.

CREATE SCHEMA gophermart;

CREATE TABLE gophermart.users (
    id            bigserial PRIMARY KEY,
    login         text NOT NULL UNIQUE CHECK (octet_length(login) BETWEEN 1 AND 256),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per user, created with the user. Every change is one conditional UPDATE:
-- a withdrawal "WHERE current_kop >= $sum", a credit together with its order's status.
CREATE TABLE gophermart.balances (
    user_id       bigint PRIMARY KEY REFERENCES gophermart.users (id),
    current_kop   bigint NOT NULL DEFAULT 0 CHECK (current_kop >= 0),
    withdrawn_kop bigint NOT NULL DEFAULT 0 CHECK (withdrawn_kop >= 0)
);

-- Uploaded orders. The poller leases NEW/PROCESSING ones (lease_owner, lease_until)
-- with FOR UPDATE SKIP LOCKED and asks the accrual system again at next_poll_at.
CREATE TABLE gophermart.orders (
    number       text PRIMARY KEY CHECK (number ~ '^[0-9]{1,64}$'),
    user_id      bigint NOT NULL REFERENCES gophermart.users (id),
    status       text NOT NULL DEFAULT 'NEW'
                 CHECK (status IN ('NEW', 'PROCESSING', 'INVALID', 'PROCESSED')),
    accrual_kop  bigint CHECK (accrual_kop >= 0),
    uploaded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_poll_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts     integer NOT NULL DEFAULT 0,
    lease_owner  text,
    lease_until  timestamptz,
    CHECK ((status = 'PROCESSED') = (accrual_kop IS NOT NULL))
);
CREATE INDEX orders_by_user ON gophermart.orders (user_id, uploaded_at, number);
CREATE INDEX orders_pending ON gophermart.orders (next_poll_at) WHERE status IN ('NEW', 'PROCESSING');

-- Withdrawals: an order number is withdrawn at most once (primary key -> 409).
CREATE TABLE gophermart.withdrawals (
    order_number text PRIMARY KEY CHECK (order_number ~ '^[0-9]{1,64}$'),
    user_id      bigint NOT NULL REFERENCES gophermart.users (id),
    sum_kop      bigint NOT NULL CHECK (sum_kop > 0),
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX withdrawals_by_user ON gophermart.withdrawals (user_id, processed_at, order_number);

-- The accrual system's last 429: every poller of every instance waits until `until`.
CREATE TABLE gophermart.accrual_pause (
    id    integer PRIMARY KEY CHECK (id = 1),
    until timestamptz NOT NULL
);
INSERT INTO gophermart.accrual_pause (id, until) VALUES (1, 'epoch');
