-- A change of one user's segments as one call, so a POST /api/users/{id}/segments is one
-- round trip instead of four (BEGIN with the user's lock, the reads, the write, COMMIT):
-- a change was bound by round trips, each costing the HTTP worker and the server a
-- wake-up and the protocol's work (bench/README.md). The rules are the ones
-- actors/segments/store/users.py documents; each statement here reads with a fresh
-- snapshot (a volatile function under READ COMMITTED), so a read after a lock sees
-- what the lock waited for, as it did when they were separate statements.

-- Lock the user's row; a user seen for the first time is made known first, with the
-- percent segments that select them (under the rollout lock `rollout_key`, shared; a
-- percent segment's creation takes it exclusively). Returns the time the user became
-- known when this call made them known, else NULL.
CREATE FUNCTION segments.make_known(p_user bigint, p_rollout_key bigint) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    seen timestamptz;
BEGIN
    PERFORM FROM segments.users WHERE id = p_user FOR UPDATE;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(p_rollout_key);
    INSERT INTO segments.users (id) VALUES (p_user) ON CONFLICT DO NOTHING
        RETURNING first_seen INTO seen;
    IF seen IS NULL THEN  -- another transaction made the user known first: wait for it
        PERFORM FROM segments.users WHERE id = p_user FOR UPDATE;
        RETURN NULL;
    END IF;
    WITH picked AS (
        SELECT id, slug FROM segments.segments
        WHERE deleted_at IS NULL AND percent > 0 AND segments.bucket(slug, p_user) < percent * 100
        FOR SHARE),
    ins AS (
        INSERT INTO segments.memberships (user_id, segment_id) SELECT p_user, id FROM picked)
    INSERT INTO segments.history (user_id, slug, operation, at)
    SELECT p_user, slug, 'add', seen FROM picked;
    RETURN seen;
END
$$;

-- Add (p_add, with each one's absolute expiry or TTL in seconds, NULL for none) and
-- remove (p_remove) segments of one user, all or nothing; the user's active slugs after
-- it, sorted. Raises SQLSTATE SG001 (DETAIL: the unknown slugs as a JSON array) when a
-- slug names no live segment, SG002 (DETAIL: the slug) when an absolute expiry is not
-- after the time of the change; nothing is changed then.
CREATE FUNCTION segments.change_user(
    p_user bigint, p_add text[], p_add_expires timestamptz[], p_add_ttl integer[],
    p_remove text[], p_rollout_key bigint) RETURNS text[]
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    named_ids bigint[];
    named_slugs text[];
    held_ids bigint[];
    held_slugs text[];
    held_expires timestamptz[];
    missing text[];
    now_ timestamptz;
    live bigint[] := '{}';
    added bigint[] := '{}';
    del bigint[] := '{}';
    up_ids bigint[] := '{}';
    up_expires timestamptz[] := '{}';
    h_slugs text[] := '{}';
    h_ops text[] := '{}';
    h_at timestamptz[] := '{}';
    sid bigint;
    slug_ text;
    expiry timestamptz;
    i integer;
BEGIN
    PERFORM segments.make_known(p_user, p_rollout_key);
    -- The named live segments, FOR SHARE: a deletion of one waits for this change, a change
    -- after the deletion finds no such segment.
    SELECT coalesce(array_agg(id ORDER BY slug), '{}'), coalesce(array_agg(slug ORDER BY slug), '{}')
    INTO named_ids, named_slugs
    FROM (SELECT id, slug FROM segments.segments
          WHERE slug = ANY (p_add || p_remove) AND deleted_at IS NULL FOR SHARE) s;
    missing := ARRAY(SELECT DISTINCT x FROM unnest(p_add || p_remove) x
                     WHERE x <> ALL (named_slugs) ORDER BY 1);
    IF cardinality(missing) > 0 THEN
        RAISE EXCEPTION 'unknown segments' USING ERRCODE = 'SG001', DETAIL = array_to_json(missing)::text;
    END IF;
    -- The user's memberships of them FOR UPDATE (the reaper skips those); the others are
    -- read, not locked: a deletion of another segment never waits for this change, nor the
    -- reverse, so the lock graph has no edge to form a cycle with.
    PERFORM FROM segments.memberships
    WHERE user_id = p_user AND segment_id = ANY (named_ids) FOR UPDATE;
    SELECT coalesce(array_agg(m.segment_id ORDER BY m.segment_id), '{}'),
           coalesce(array_agg(s.slug ORDER BY m.segment_id), '{}'),
           coalesce(array_agg(m.expires_at ORDER BY m.segment_id), '{}')
    INTO held_ids, held_slugs, held_expires
    FROM segments.memberships m JOIN segments.segments s ON s.id = m.segment_id
    WHERE m.user_id = p_user;
    -- Read after every lock is held, so history timestamps follow the serial order.
    now_ := clock_timestamp();
    FOR i IN 1 .. cardinality(p_add) LOOP
        added := added || named_ids[array_position(named_slugs, p_add[i])];
    END LOOP;
    FOR i IN 1 .. cardinality(held_ids) LOOP
        IF held_expires[i] IS NULL OR held_expires[i] > now_ THEN
            live := live || held_ids[i];
        ELSIF held_ids[i] = ANY (named_ids) THEN  -- expired and named: left at its expiry
            h_slugs := h_slugs || held_slugs[i];
            h_ops := h_ops || 'remove'::text;
            h_at := h_at || held_expires[i];
            IF NOT held_ids[i] = ANY (added) THEN
                del := del || held_ids[i];
            END IF;
        END IF;
    END LOOP;
    FOR slug_ IN SELECT DISTINCT x FROM unnest(p_remove) x ORDER BY 1 LOOP
        sid := named_ids[array_position(named_slugs, slug_)];
        IF sid = ANY (live) THEN
            del := del || sid;
            h_slugs := h_slugs || slug_;
            h_ops := h_ops || 'remove'::text;
            h_at := h_at || now_;
        END IF;
    END LOOP;
    FOR i IN 1 .. cardinality(p_add) LOOP
        IF p_add_ttl[i] IS NOT NULL THEN
            expiry := now_ + make_interval(secs => p_add_ttl[i]);
        ELSIF p_add_expires[i] IS NOT NULL AND p_add_expires[i] <= now_ THEN
            RAISE EXCEPTION 'expiry in the past' USING ERRCODE = 'SG002', DETAIL = p_add[i];
        ELSE
            expiry := p_add_expires[i];
        END IF;
        up_ids := up_ids || added[i];
        up_expires := up_expires || expiry;
        IF NOT added[i] = ANY (live) THEN
            h_slugs := h_slugs || p_add[i];
            h_ops := h_ops || 'add'::text;
            h_at := h_at || now_;
        END IF;
    END LOOP;
    IF cardinality(del) > 0 OR cardinality(up_ids) > 0 THEN
        DELETE FROM segments.memberships WHERE user_id = p_user AND segment_id = ANY (del);
        INSERT INTO segments.memberships (user_id, segment_id, expires_at)
        SELECT p_user, u.segment_id, u.expires_at
        FROM unnest(up_ids, up_expires) AS u(segment_id, expires_at)
        ON CONFLICT (user_id, segment_id) DO UPDATE SET expires_at = EXCLUDED.expires_at;
        INSERT INTO segments.history (user_id, slug, operation, at)
        SELECT p_user, h.slug, h.operation, h.at
        FROM unnest(h_slugs, h_ops, h_at) WITH ORDINALITY AS h(slug, operation, at, n)
        ORDER BY h.n;
    END IF;
    RETURN ARRAY(
        SELECT DISTINCT x COLLATE "C" FROM (
            SELECT held_slugs[k] AS x FROM generate_subscripts(held_ids, 1) k
            WHERE held_ids[k] = ANY (live) AND NOT held_ids[k] = ANY (del)
            UNION ALL SELECT unnest(p_add)) a
        ORDER BY 1);
END
$$;
