-- segments: user segments for experiments (seed 004). Applied once by actors.runtime.pg.migrate
-- inside one transaction under an advisory lock. Everything lives in the schema `segments`,
-- so the service can share a database with the others.
CREATE SCHEMA segments;

-- The stable hash of (slug, user id): the first 15 hex digits (60 bits) of
-- md5(slug || ':' || user_id) as an integer, mod 10000. A user belongs to a percent segment
-- when segments.bucket(slug, user_id) < percent * 100. md5 and the cast are the same on every
-- PostgreSQL version (unlike hashtext), and actors/segments/rollout.py computes the same
-- number in Python.
CREATE FUNCTION segments.bucket(slug text, user_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (('x' || substr(md5(slug || ':' || user_id::text), 1, 15))::bit(60)::bigint
                  % 10000)::integer $$;

CREATE TABLE segments.segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL CHECK (slug ~ '^[A-Za-z0-9_.-]{1,100}$'),
    -- NULL: no automatic rollout; else the share of users as given (an exact decimal);
    -- with 10000 buckets the share moves in steps of 0.01 %.
    percent     numeric CHECK (percent BETWEEN 0 AND 100),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A deleted segment stays (history names it by slug); its slug may be created again.
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX segments_live_slug ON segments.segments (slug) WHERE deleted_at IS NULL;

-- Users are known from the first request about them; that request assigns the percent
-- segments that exist at that moment. Changes of one user serialize on this row's lock.
CREATE TABLE segments.users (
    id          bigint PRIMARY KEY CHECK (id > 0),
    first_seen  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- NOTE: no foreign keys: the store is the only writer and keeps both ends consistent
-- (user row locked, segment row FOR SHARE); FK checks would double the cost of assigning
-- a percent segment to a million users.
CREATE TABLE segments.memberships (
    user_id     bigint NOT NULL,
    segment_id  bigint NOT NULL,
    expires_at  timestamptz,  -- NULL: until removed
    PRIMARY KEY (user_id, segment_id)
);
CREATE INDEX memberships_segment ON segments.memberships (segment_id);
CREATE INDEX memberships_expiry ON segments.memberships (expires_at)
    WHERE expires_at IS NOT NULL;

-- One row per change; per (user, slug) operations alternate add/remove in time order.
-- Removals by TTL are stamped with the expiry time, not with the time the reaper ran.
CREATE TABLE segments.history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL,
    slug        text NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('add', 'remove')),
    at          timestamptz NOT NULL
);
CREATE INDEX history_at ON segments.history (at, id);
CREATE INDEX history_user_at ON segments.history (user_id, at, id);
