-- jobctl schema 4: concurrency limits (see the PostgreSQL migration for the rules). SQLite has
-- one writer at a time, so the triggers need no locking; they assign slots directly.
-- `(julianday('now') - 2440587.5) * 86400.0` is the current time in epoch seconds.

ALTER TABLE jobctl_jobs ADD COLUMN concurrency_key TEXT;
CREATE INDEX jobctl_jobs_blocked ON jobctl_jobs (concurrency_key, priority, id) WHERE state = 'blocked';
CREATE INDEX jobctl_jobs_limited_active ON jobctl_jobs (concurrency_key)
    WHERE concurrency_key IS NOT NULL AND state IN ('ready', 'claimed');

CREATE TABLE jobctl_slots (
    key          TEXT    NOT NULL,
    slot         INTEGER NOT NULL,
    job_id       INTEGER,
    assigned_at  REAL,
    duration_s   REAL    NOT NULL DEFAULT 180,
    PRIMARY KEY (key, slot)
);
CREATE UNIQUE INDEX jobctl_slots_job ON jobctl_slots (job_id) WHERE job_id IS NOT NULL;

-- A limited job that became ready takes a free slot, or goes back to blocked.
CREATE TRIGGER jobctl_take_slot_on_insert AFTER INSERT ON jobctl_jobs
WHEN NEW.concurrency_key IS NOT NULL AND NEW.state = 'ready'
BEGIN
    UPDATE jobctl_slots SET job_id = NEW.id, assigned_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE rowid = (SELECT rowid FROM jobctl_slots WHERE key = NEW.concurrency_key AND job_id IS NULL
                   ORDER BY slot LIMIT 1);
    UPDATE jobctl_jobs SET state = 'blocked'
    WHERE id = NEW.id AND NOT EXISTS (SELECT 1 FROM jobctl_slots WHERE job_id = NEW.id);
END;

CREATE TRIGGER jobctl_take_slot_on_ready AFTER UPDATE OF state ON jobctl_jobs
WHEN NEW.concurrency_key IS NOT NULL AND NEW.state = 'ready' AND OLD.state <> 'ready'
BEGIN
    UPDATE jobctl_slots SET job_id = NEW.id, assigned_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE NOT EXISTS (SELECT 1 FROM jobctl_slots WHERE job_id = NEW.id)
      AND rowid = (SELECT rowid FROM jobctl_slots WHERE key = NEW.concurrency_key AND job_id IS NULL
                   ORDER BY slot LIMIT 1);
    UPDATE jobctl_jobs SET state = 'blocked'
    WHERE id = NEW.id AND NOT EXISTS (SELECT 1 FROM jobctl_slots WHERE job_id = NEW.id);
END;

-- A limited job leaving ready/claimed frees its slot for the key's best blocked job.
CREATE TRIGGER jobctl_free_slot_on_leave AFTER UPDATE OF state ON jobctl_jobs
WHEN OLD.concurrency_key IS NOT NULL AND OLD.state IN ('ready', 'claimed') AND NEW.state NOT IN ('ready', 'claimed')
BEGIN
    UPDATE jobctl_slots SET job_id = NULL, assigned_at = NULL WHERE job_id = OLD.id;
    UPDATE jobctl_slots SET job_id = (SELECT id FROM jobctl_jobs WHERE state = 'blocked'
                                      AND concurrency_key = OLD.concurrency_key ORDER BY priority, id LIMIT 1),
                            assigned_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE rowid = (SELECT rowid FROM jobctl_slots WHERE key = OLD.concurrency_key AND job_id IS NULL
                   ORDER BY slot LIMIT 1)
      AND EXISTS (SELECT 1 FROM jobctl_jobs WHERE state = 'blocked' AND concurrency_key = OLD.concurrency_key);
    UPDATE jobctl_jobs SET state = 'ready'
    WHERE state = 'blocked' AND id IN (SELECT job_id FROM jobctl_slots WHERE key = OLD.concurrency_key);
END;

CREATE TRIGGER jobctl_free_slot_on_delete AFTER DELETE ON jobctl_jobs
WHEN OLD.concurrency_key IS NOT NULL
BEGIN
    UPDATE jobctl_slots SET job_id = NULL, assigned_at = NULL WHERE job_id = OLD.id;
    UPDATE jobctl_slots SET job_id = (SELECT id FROM jobctl_jobs WHERE state = 'blocked'
                                      AND concurrency_key = OLD.concurrency_key ORDER BY priority, id LIMIT 1),
                            assigned_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE rowid = (SELECT rowid FROM jobctl_slots WHERE key = OLD.concurrency_key AND job_id IS NULL
                   ORDER BY slot LIMIT 1)
      AND EXISTS (SELECT 1 FROM jobctl_jobs WHERE state = 'blocked' AND concurrency_key = OLD.concurrency_key);
    UPDATE jobctl_jobs SET state = 'ready'
    WHERE state = 'blocked' AND id IN (SELECT job_id FROM jobctl_slots WHERE key = OLD.concurrency_key);
END;
