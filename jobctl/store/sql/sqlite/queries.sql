-- Named queries for SQLite. Each starts with `-- name: NAME` and a one-line description.
-- Parameters are sqlite3 named placeholders; `:now` is the current time in epoch seconds.

-- name: insert_job
-- Insert one job, ready now or scheduled; with an active job holding the same key, insert nothing.
INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, key, enqueued_at, scheduled_at)
VALUES (:queue, :class, :priority, CASE WHEN :at > :now THEN 'scheduled' ELSE 'ready' END,
        :arguments, :key, :now, :at)
ON CONFLICT DO NOTHING
RETURNING id, state;

-- name: find_active_by_key
-- The active job holding a unique key.
SELECT id, state FROM jobctl_jobs
WHERE key = :key AND state IN ('scheduled', 'ready', 'blocked', 'claimed');

-- name: job_state
-- The state of one job.
SELECT state FROM jobctl_jobs WHERE id = :id;

-- name: get_job
-- One job, every column the JSON form needs.
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key,
       enqueued_at, scheduled_at, claimed_at, finished_at, process_id
FROM jobctl_jobs WHERE id = :id;

-- name: job_errors
-- Every error kept for one job, oldest first.
SELECT attempt, class, message, traceback, at FROM jobctl_errors WHERE job_id = :id ORDER BY id;

-- name: job_progress
-- The progress last reported by one job.
SELECT done, total, message, at FROM jobctl_progress WHERE job_id = :id;

-- name: count_jobs
-- Count jobs, optionally of one state and/or one queue.
SELECT count(*) FROM jobctl_jobs
WHERE (:state IS NULL OR state = :state) AND (:queue IS NULL OR queue = :queue);
