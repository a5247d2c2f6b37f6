-- Batches and dependencies, SQLite. Each query starts with `-- name: NAME` and a one-line description;
-- parameters are sqlite3 named placeholders. The counting itself is in migration 0009.

-- name: create_batch
-- Open a batch (not sealed: it cannot finish while its `with` block runs).
INSERT INTO jobctl_batches (description, metadata, parent_job_id, created_at)
VALUES (:description, :metadata, :parent_job_id, :now)
RETURNING id;

-- name: seal_batch
-- The `with` block ended: store the callbacks and seal; the batch's trigger enqueues what is due already.
UPDATE jobctl_batches
SET sealed = 1, on_success = :on_success, on_failure = :on_failure, on_finish = :on_finish
WHERE id = :id AND NOT sealed;

-- name: batches_by_ids
-- Batches by id, newest first.
SELECT id, description, metadata, total, finished, failed, sealed, created_at, finished_at,
       on_success, on_failure, on_finish, success_job_id, failure_job_id, finish_job_id, parent_job_id
FROM jobctl_batches WHERE id IN (SELECT value FROM json_each(:ids)) ORDER BY id DESC;

-- name: list_batches
-- One page of batches, newest first, optionally of one state; `after` is the previous page's last id.
SELECT id, description, metadata, total, finished, failed, sealed, created_at, finished_at,
       on_success, on_failure, on_finish, success_job_id, failure_job_id, finish_job_id, parent_job_id
FROM jobctl_batches
WHERE (:after IS NULL OR id < :after)
  AND (:state IS NULL
       OR (:state = 'open' AND NOT sealed)
       OR (:state = 'running' AND sealed AND finished_at IS NULL)
       OR (:state = 'finished' AND finished_at IS NOT NULL AND failed = 0)
       OR (:state = 'failed' AND finished_at IS NOT NULL AND failed > 0))
ORDER BY id DESC
LIMIT :limit;

-- name: batch_states
-- A batch's members by state (members still stored).
SELECT state, count(*) FROM jobctl_jobs WHERE batch_id = :id GROUP BY state;

-- name: batch_members
-- Some of a batch's members still active, oldest first: what holds it open.
SELECT id FROM jobctl_jobs
WHERE batch_id = :id AND state IN ('scheduled', 'ready', 'claimed', 'blocked', 'waiting')
ORDER BY id LIMIT :limit;

-- name: depend
-- Make a just-inserted waiting job wait for these jobs and batches (those that exist), resolving what
-- has ended already (failures first: one discards the job at once); the last statement gives its state.
UPDATE jobctl_jobs SET dependents = 1 WHERE id IN (SELECT value FROM json_each(:jobs)) AND dependents IS NOT 1;
INSERT INTO jobctl_dependencies (job_id, on_job)
SELECT :id, id FROM jobctl_jobs WHERE id IN (SELECT value FROM json_each(:jobs)) ORDER BY id;
INSERT INTO jobctl_dependencies (job_id, on_batch)
SELECT :id, id FROM jobctl_batches WHERE id IN (SELECT value FROM json_each(:batches)) ORDER BY id;
UPDATE jobctl_dependencies SET outcome = 'failed'
WHERE job_id = :id AND on_job IN (SELECT id FROM jobctl_jobs WHERE state IN ('failed', 'discarded'));
UPDATE jobctl_dependencies SET outcome = 'failed'
WHERE job_id = :id AND on_batch IN (SELECT id FROM jobctl_batches WHERE finished_at IS NOT NULL AND failed > 0);
UPDATE jobctl_dependencies SET outcome = 'finished'
WHERE job_id = :id AND outcome IS NULL AND on_job IN (SELECT id FROM jobctl_jobs WHERE state = 'finished');
UPDATE jobctl_dependencies SET outcome = 'finished'
WHERE job_id = :id AND outcome IS NULL
  AND on_batch IN (SELECT id FROM jobctl_batches WHERE finished_at IS NOT NULL AND failed = 0);
UPDATE jobctl_jobs SET state = CASE WHEN scheduled_at > :now THEN 'scheduled' ELSE 'ready' END
WHERE id = :id AND state = 'waiting' AND NOT EXISTS (SELECT 1 FROM jobctl_dependencies WHERE job_id = :id);
SELECT state FROM jobctl_jobs WHERE id = :id;

-- name: dependencies_of_jobs
-- What some jobs wait (or waited) for.
SELECT job_id, on_job, on_batch, outcome FROM jobctl_dependencies
WHERE job_id IN (SELECT value FROM json_each(:ids)) ORDER BY job_id, on_batch IS NOT NULL, on_job, on_batch;

-- name: dependents_of_jobs
-- Which jobs wait (or waited) for some jobs.
SELECT on_job, job_id FROM jobctl_dependencies WHERE on_job IN (SELECT value FROM json_each(:ids))
ORDER BY on_job, job_id;
