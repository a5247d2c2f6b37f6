-- jobctl schema 4: concurrency limits.
--
-- A job with a concurrency key may be ready or claimed only while it holds one of its key's
-- slots (`to` rows in jobctl_slots). The database enforces it with triggers, so no path can
-- forget: enqueue, dispatch, retries, operators' retry/discard/clear, crash releases.
--   * a limited job entering `ready` takes a free slot, or becomes `blocked` (new ones are inserted as
--     blocked, then jobctl_unblock hands them a slot if one is free);
--   * a limited job leaving ready/claimed for any other state (or deleted) frees its slot and
--     hands it to the key's next blocked job, in priority order.
-- A slot freed by a transaction that rolled back, or left by any other mishap, is found by the
-- dispatcher's maintenance (jobctl_unblock_all), so blocked jobs never stay stuck.

ALTER TABLE jobctl_jobs ADD COLUMN concurrency_key text;
CREATE INDEX jobctl_jobs_blocked ON jobctl_jobs (concurrency_key, priority, id) WHERE state = 'blocked';
CREATE INDEX jobctl_jobs_limited_active ON jobctl_jobs (concurrency_key)
    WHERE concurrency_key IS NOT NULL AND state IN ('ready', 'claimed');

CREATE TABLE jobctl_slots (
    key          text        NOT NULL,
    slot         integer     NOT NULL,
    job_id       bigint,
    assigned_at  timestamptz,
    duration_s   double precision NOT NULL DEFAULT 180,
    PRIMARY KEY (key, slot)
);
CREATE UNIQUE INDEX jobctl_slots_job ON jobctl_slots (job_id) WHERE job_id IS NOT NULL;

-- Take a free slot for NEW, or make it wait as blocked.
CREATE FUNCTION jobctl_take_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jobctl_slots WHERE job_id = NEW.id) THEN
        RETURN NEW;  -- released back to ready after a crash: it keeps its slot
    END IF;
    UPDATE jobctl_slots SET job_id = NEW.id, assigned_at = now()
    WHERE (key, slot) = (SELECT key, slot FROM jobctl_slots
                         WHERE key = NEW.concurrency_key AND job_id IS NULL
                         ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED);
    IF NOT FOUND THEN
        NEW.state := 'blocked';
    END IF;
    RETURN NEW;
END $$;

-- Hand free slots of one key to its blocked jobs, best priority first; returns how many moved.
CREATE FUNCTION jobctl_unblock(p_key text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    moved integer := 0;
    next_id bigint;
    next_queue text;
BEGIN
    LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM jobctl_slots WHERE key = p_key AND job_id IS NULL);
        SELECT id, queue INTO next_id, next_queue FROM jobctl_jobs
        WHERE state = 'blocked' AND concurrency_key = p_key
        ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN next_id IS NULL;
        UPDATE jobctl_jobs SET state = 'ready', scheduled_at = now() WHERE id = next_id;  -- takes the slot
        EXIT WHEN NOT EXISTS (SELECT 1 FROM jobctl_slots WHERE job_id = next_id);
        PERFORM pg_notify('jobctl', next_queue);
        moved := moved + 1;
        next_id := NULL;
    END LOOP;
    RETURN moved;
END $$;

-- Free the slot a job held and give it to the next blocked job of its key.
CREATE FUNCTION jobctl_free_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobctl_slots SET job_id = NULL, assigned_at = NULL WHERE job_id = OLD.id;
    IF FOUND THEN
        PERFORM jobctl_unblock(OLD.concurrency_key);
    END IF;
    RETURN NULL;
END $$;

-- No trigger on INSERT: a row trigger there would make every COPY insert row by row. A limited
-- job is inserted as blocked and its enqueuer calls jobctl_unblock(key) in the same transaction.
CREATE TRIGGER jobctl_take_slot_on_ready BEFORE UPDATE OF state ON jobctl_jobs
    FOR EACH ROW WHEN (NEW.concurrency_key IS NOT NULL AND NEW.state = 'ready' AND OLD.state <> 'ready')
    EXECUTE FUNCTION jobctl_take_slot();
CREATE TRIGGER jobctl_free_slot_on_leave AFTER UPDATE OF state ON jobctl_jobs
    FOR EACH ROW WHEN (OLD.concurrency_key IS NOT NULL AND OLD.state IN ('ready', 'claimed')
                       AND NEW.state NOT IN ('ready', 'claimed'))
    EXECUTE FUNCTION jobctl_free_slot();
CREATE TRIGGER jobctl_free_slot_on_delete AFTER DELETE ON jobctl_jobs
    FOR EACH ROW WHEN (OLD.concurrency_key IS NOT NULL)
    EXECUTE FUNCTION jobctl_free_slot();

-- The dispatcher's fail-safe: reclaim slots whose holder is no longer ready or claimed (held
-- longer than the limit's duration), then unblock every key that has a free slot and waiters.
CREATE FUNCTION jobctl_unblock_all() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    moved integer := 0;
    k text;
BEGIN
    UPDATE jobctl_slots AS s SET job_id = NULL, assigned_at = NULL
    WHERE s.job_id IS NOT NULL AND s.assigned_at < now() - s.duration_s * interval '1 second'
      AND NOT EXISTS (SELECT 1 FROM jobctl_jobs AS j WHERE j.id = s.job_id AND j.state IN ('ready', 'claimed'));
    FOR k IN SELECT DISTINCT s.key FROM jobctl_slots AS s
             WHERE s.job_id IS NULL
               AND EXISTS (SELECT 1 FROM jobctl_jobs AS j WHERE j.state = 'blocked' AND j.concurrency_key = s.key)
    LOOP
        moved := moved + jobctl_unblock(k);
    END LOOP;
    RETURN moved;
END $$;
