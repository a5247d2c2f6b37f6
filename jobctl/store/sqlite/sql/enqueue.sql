-- Enqueueing and reading jobs, SQLite. Each query starts with `-- name: NAME` and a one-line
-- description; parameters are sqlite3 named placeholders, `:now` the current time in epoch seconds.

-- name: insert_job
-- Insert one job, ready now or scheduled; with an active job holding the same key, insert nothing.
INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, key, enqueued_at, scheduled_at, concurrency_key,
                         timeout_s, batch_id, on_dependency_failure)
VALUES (:queue, :class, :priority, CASE WHEN :waits THEN 'waiting' WHEN :at > :now THEN 'scheduled' ELSE 'ready' END,
        :arguments, :key, :now, :at, :concurrency_key, :timeout, :batch_id, :on_dependency_failure)
ON CONFLICT DO NOTHING
RETURNING id, state;

-- name: insert_ready
-- Insert a job ready now with no key or limit (the bulk path): parameters are queue, class,
-- priority, arguments, now.
INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, enqueued_at, scheduled_at)
VALUES (?1, ?2, ?3, 'ready', ?4, ?5, ?5);

-- name: find_active_by_key
-- The active job holding a unique key.
SELECT id, state FROM jobctl_jobs
WHERE key = :key AND state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting');

-- name: job_state
-- The state of one job.
SELECT state FROM jobctl_jobs WHERE id = :id;

-- name: count_jobs
-- Count jobs, optionally of one state and/or one queue.
SELECT count(*) FROM jobctl_jobs
WHERE (:state IS NULL OR state = :state) AND (:queue IS NULL OR queue = :queue);
