-- balances: users, their amount tasks (the queue and its history), shard leases.
-- Everything lives in the schema `balances`, so the service may share a database.

CREATE SCHEMA IF NOT EXISTS balances;

CREATE TABLE balances.users (
    id          bigserial PRIMARY KEY,
    username    text NOT NULL UNIQUE
                CHECK (octet_length(username) BETWEEN 1 AND 128),
    balance     bigint NOT NULL CHECK (balance >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per accepted task; id is the acceptance order. A task is queued until the
-- worker owning its user's shard applies it: done (balance_after set) or cancelled
-- (reason set), exactly once -- every status change is guarded by status = 'queued'.
CREATE TABLE balances.tasks (
    id               bigserial PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES balances.users (id),
    type             text NOT NULL CHECK (type IN ('replenishment', 'write-off')),
    amount           bigint NOT NULL CHECK (amount > 0),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'done', 'cancelled')),
    reason           text,
    balance_after    bigint CHECK (balance_after >= 0),
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    applied_at       timestamptz,
    CHECK ((status = 'queued') = (applied_at IS NULL)),
    CHECK ((status = 'done') = (balance_after IS NOT NULL)),
    CHECK ((status = 'cancelled') = (reason IS NOT NULL))
);

-- A user's tasks in acceptance order (GET /api/v1/user/{id}/tasks/).
CREATE INDEX tasks_user_id ON balances.tasks (user_id, id);
-- The queue: only queued rows, so it stays small however long the history grows.
CREATE INDEX tasks_queued ON balances.tasks (user_id, id) WHERE status = 'queued';
-- An Idempotency-Key is scoped to its user: a repeat returns the first task.
CREATE UNIQUE INDEX tasks_idempotency ON balances.tasks (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Users are split into a fixed number of shards (user_id % 64); a worker actor applies
-- the tasks of the shards it holds an unexpired lease on. Rows exist for every shard.
CREATE TABLE balances.shard_leases (
    shard        integer PRIMARY KEY CHECK (shard >= 0),
    owner        text,
    lease_until  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO balances.shard_leases (shard) SELECT generate_series(0, 63);

-- Live workers (of every instance) and where to nudge them; the fair share of shards
-- is computed from the owners seen recently.
CREATE TABLE balances.lease_owners (
    owner       text PRIMARY KEY,
    endpoint    text NOT NULL,
    seen_until  timestamptz NOT NULL
);
