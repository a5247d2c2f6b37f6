-- jobctl schema 9: batches and dependencies between jobs (see the PostgreSQL migration for the rules).
-- SQLite has one writer at a time, so every count is a trigger on the member's row (connections run
-- with recursive_triggers on: a discarded dependent may be a batch member and have dependents too).
-- `(julianday('now') - 2440587.5) * 86400.0` is the current time in epoch seconds.

ALTER TABLE jobctl_jobs ADD COLUMN batch_id INTEGER;
ALTER TABLE jobctl_jobs ADD COLUMN dependents INTEGER;            -- 1 once another job waits for it
ALTER TABLE jobctl_jobs ADD COLUMN on_dependency_failure TEXT;     -- 'run': run even if a dependency failed

-- The state CHECK gains `waiting`. Widening a CHECK leaves every stored row valid, so SQLite's documented
-- procedure for such changes applies: rewrite the table's schema text (the runner bumps schema_version).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, '''blocked'', ''finished''', '''blocked'', ''waiting'', ''finished''')
WHERE type = 'table' AND name = 'jobctl_jobs';
PRAGMA writable_schema = OFF;

DROP INDEX jobctl_jobs_active_key;
CREATE UNIQUE INDEX jobctl_jobs_active_key ON jobctl_jobs (key)
    WHERE key IS NOT NULL AND state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting');
CREATE INDEX jobctl_jobs_batch ON jobctl_jobs (batch_id, state) WHERE batch_id IS NOT NULL;
CREATE INDEX jobctl_jobs_waiting ON jobctl_jobs (id) WHERE state = 'waiting';

CREATE TABLE jobctl_batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    description     TEXT,
    metadata        TEXT,
    total           INTEGER NOT NULL DEFAULT 0,
    finished        INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    sealed          INTEGER NOT NULL DEFAULT 0,
    on_success      TEXT,
    on_failure      TEXT,
    on_finish       TEXT,
    success_job_id  INTEGER,
    failure_job_id  INTEGER,
    finish_job_id   INTEGER,
    parent_job_id   INTEGER,
    created_at      REAL    NOT NULL,
    finished_at     REAL
);
CREATE INDEX jobctl_batches_active ON jobctl_batches (id) WHERE finished_at IS NULL;

CREATE TABLE jobctl_dependencies (
    job_id    INTEGER NOT NULL,
    on_job    INTEGER,
    on_batch  INTEGER,
    outcome   TEXT,
    CHECK ((on_job IS NULL) <> (on_batch IS NULL))
);
CREATE INDEX jobctl_dependencies_job ON jobctl_dependencies (job_id);
CREATE INDEX jobctl_dependencies_on_job ON jobctl_dependencies (on_job, job_id) WHERE on_job IS NOT NULL;
CREATE INDEX jobctl_dependencies_on_batch ON jobctl_dependencies (on_batch, job_id) WHERE on_batch IS NOT NULL;

-- Counting members: enqueued, and moved between active / finished / failed-or-discarded by any path.
CREATE TRIGGER jobctl_member_added AFTER INSERT ON jobctl_jobs
WHEN NEW.batch_id IS NOT NULL
BEGIN
    UPDATE jobctl_batches SET total = total + 1 WHERE id = NEW.batch_id;
END;

CREATE TRIGGER jobctl_member_changed AFTER UPDATE OF state ON jobctl_jobs
WHEN NEW.batch_id IS NOT NULL AND OLD.state <> NEW.state
     AND (NEW.state IN ('finished', 'failed', 'discarded') OR OLD.state IN ('finished', 'failed', 'discarded'))
BEGIN
    UPDATE jobctl_batches
    SET finished = finished - (OLD.state = 'finished') + (NEW.state = 'finished'),
        failed = failed - (OLD.state IN ('failed', 'discarded')) + (NEW.state IN ('failed', 'discarded'))
    WHERE id = NEW.batch_id
      AND (OLD.state = 'finished') + 2 * (OLD.state IN ('failed', 'discarded'))
          <> (NEW.state = 'finished') + 2 * (NEW.state IN ('failed', 'discarded'));
END;

CREATE TRIGGER jobctl_member_deleted AFTER DELETE ON jobctl_jobs
WHEN OLD.batch_id IS NOT NULL AND OLD.state NOT IN ('finished', 'failed', 'discarded')
BEGIN
    UPDATE jobctl_batches SET failed = failed + 1 WHERE id = OLD.batch_id;
END;

-- Callbacks, each once: on_failure at the first failed member, on_finish when none is active, on_success
-- when none is active and none failed. A callback's id column is first marked -1, the job inserted from
-- the stored JSON, and the mark replaced by its id.
CREATE TRIGGER jobctl_batch_check AFTER UPDATE OF total, finished, failed, sealed ON jobctl_batches
WHEN NEW.sealed
BEGIN
    UPDATE jobctl_batches SET failure_job_id = -1
    WHERE id = NEW.id AND failed > 0 AND failure_job_id IS NULL AND on_failure IS NOT NULL;
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, enqueued_at, scheduled_at)
    SELECT json_extract(on_failure, '$.queue'), json_extract(on_failure, '$.class'),
           json_extract(on_failure, '$.priority'), 'ready', json_extract(on_failure, '$.arguments'),
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0
    FROM jobctl_batches WHERE id = NEW.id AND failure_job_id = -1;
    UPDATE jobctl_batches SET failure_job_id = last_insert_rowid() WHERE id = NEW.id AND failure_job_id = -1;

    UPDATE jobctl_batches SET finish_job_id = -1
    WHERE id = NEW.id AND finished + failed >= total AND finish_job_id IS NULL AND on_finish IS NOT NULL;
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, enqueued_at, scheduled_at)
    SELECT json_extract(on_finish, '$.queue'), json_extract(on_finish, '$.class'),
           json_extract(on_finish, '$.priority'), 'ready', json_extract(on_finish, '$.arguments'),
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0
    FROM jobctl_batches WHERE id = NEW.id AND finish_job_id = -1;
    UPDATE jobctl_batches SET finish_job_id = last_insert_rowid() WHERE id = NEW.id AND finish_job_id = -1;

    UPDATE jobctl_batches SET success_job_id = -1
    WHERE id = NEW.id AND finished >= total AND failed = 0 AND success_job_id IS NULL AND on_success IS NOT NULL;
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, enqueued_at, scheduled_at)
    SELECT json_extract(on_success, '$.queue'), json_extract(on_success, '$.class'),
           json_extract(on_success, '$.priority'), 'ready', json_extract(on_success, '$.arguments'),
           (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0
    FROM jobctl_batches WHERE id = NEW.id AND success_job_id = -1;
    UPDATE jobctl_batches SET success_job_id = last_insert_rowid() WHERE id = NEW.id AND success_job_id = -1;

    -- Ended for the first time since it was last active: note when, and resolve what waits for it.
    UPDATE jobctl_dependencies SET outcome = CASE WHEN NEW.failed = 0 THEN 'finished' ELSE 'failed' END
    WHERE on_batch = NEW.id AND outcome IS NULL AND NEW.finished_at IS NULL AND NEW.finished + NEW.failed >= NEW.total;
    UPDATE jobctl_batches SET finished_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE id = NEW.id AND finished_at IS NULL AND finished + failed >= total;
    UPDATE jobctl_batches SET finished_at = NULL
    WHERE id = NEW.id AND finished_at IS NOT NULL AND finished + failed < total;
END;

-- A job others wait for ended (or was deleted before it ended): resolve their dependencies on it.
CREATE TRIGGER jobctl_dependency_ended AFTER UPDATE OF state ON jobctl_jobs
WHEN NEW.dependents AND OLD.state NOT IN ('finished', 'failed', 'discarded')
     AND NEW.state IN ('finished', 'failed', 'discarded')
BEGIN
    UPDATE jobctl_dependencies SET outcome = CASE WHEN NEW.state = 'finished' THEN 'finished' ELSE 'failed' END
    WHERE on_job = NEW.id AND outcome IS NULL;
END;

CREATE TRIGGER jobctl_dependency_deleted AFTER DELETE ON jobctl_jobs
WHEN OLD.dependents AND OLD.state NOT IN ('finished', 'failed', 'discarded')
BEGIN
    UPDATE jobctl_dependencies SET outcome = 'failed' WHERE on_job = OLD.id AND outcome IS NULL;
END;

-- Something a job waits for ended: discard the job with the reason, or make it due when nothing is left.
CREATE TRIGGER jobctl_dependency_resolved AFTER UPDATE OF outcome ON jobctl_dependencies
WHEN OLD.outcome IS NULL AND NEW.outcome IS NOT NULL
BEGIN
    INSERT INTO jobctl_errors (job_id, attempt, class, message, at)
    SELECT id, 0, 'jobctl.DependencyFailed',
           CASE WHEN NEW.on_job IS NOT NULL THEN 'dependency job ' || NEW.on_job || ' failed or was discarded'
                ELSE 'dependency batch ' || NEW.on_batch || ' had a failed or discarded job' END,
           (julianday('now') - 2440587.5) * 86400.0
    FROM jobctl_jobs
    WHERE id = NEW.job_id AND state = 'waiting' AND NEW.outcome <> 'finished'
      AND on_dependency_failure IS NOT 'run';
    UPDATE jobctl_jobs SET state = 'discarded', finished_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE id = NEW.job_id AND state = 'waiting' AND NEW.outcome <> 'finished'
      AND on_dependency_failure IS NOT 'run';
    UPDATE jobctl_jobs
    -- julianday('now') has millisecond precision: a job due "now" by the enqueuer's clock is ready.
    SET state = CASE WHEN scheduled_at > (julianday('now') - 2440587.5) * 86400.0 + 0.01 THEN 'scheduled'
                     ELSE 'ready' END
    WHERE id = NEW.job_id AND state = 'waiting'
      AND NOT EXISTS (SELECT 1 FROM jobctl_dependencies WHERE job_id = NEW.job_id AND outcome IS NULL);
END;
