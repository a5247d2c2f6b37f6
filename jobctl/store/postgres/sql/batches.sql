-- Batches and dependencies, PostgreSQL. Each query starts with `-- name: NAME` and a one-line
-- description; parameters are psycopg named placeholders. The counting itself is in migration 0009.

-- name: create_batch
-- Open a batch (not sealed: it cannot finish while its `with` block runs).
INSERT INTO jobctl_batches (description, metadata, parent_job_id)
VALUES (%(description)s, %(metadata)s::json, %(parent_job_id)s)
RETURNING id;

-- name: seal_batch
-- The `with` block ended: store the callbacks and seal; the batch's trigger enqueues what is due already.
UPDATE jobctl_batches
SET sealed = true, on_success = %(on_success)s::json, on_failure = %(on_failure)s::json,
    on_finish = %(on_finish)s::json
WHERE id = %(id)s AND NOT sealed;

-- name: batches_by_ids
-- Batches by id, newest first.
SELECT id, description, metadata, total, finished, failed, sealed, created_at, finished_at,
       on_success::text, on_failure::text, on_finish::text, success_job_id, failure_job_id, finish_job_id,
       parent_job_id
FROM jobctl_batches WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id DESC;

-- name: list_batches
-- One page of batches, newest first, optionally of one state; `after` is the previous page's last id.
SELECT id, description, metadata, total, finished, failed, sealed, created_at, finished_at,
       on_success::text, on_failure::text, on_finish::text, success_job_id, failure_job_id, finish_job_id,
       parent_job_id
FROM jobctl_batches
WHERE (%(after)s::bigint IS NULL OR id < %(after)s)
  AND (%(state)s::text IS NULL
       OR (%(state)s = 'open' AND NOT sealed)
       OR (%(state)s = 'running' AND sealed AND finished_at IS NULL)
       OR (%(state)s = 'finished' AND finished_at IS NOT NULL AND failed = 0)
       OR (%(state)s = 'failed' AND finished_at IS NOT NULL AND failed > 0))
ORDER BY id DESC
LIMIT %(limit)s;

-- name: batch_states
-- A batch's members by state (members still stored).
SELECT state, count(*) FROM jobctl_jobs WHERE batch_id = %(id)s GROUP BY state;

-- name: batch_members
-- Some of a batch's members still active, oldest first: what holds it open.
SELECT id FROM jobctl_jobs
WHERE batch_id = %(id)s AND state IN ('scheduled', 'ready', 'claimed', 'blocked', 'waiting')
ORDER BY id LIMIT %(limit)s;

-- name: depend
-- Make a just-inserted waiting job wait for these jobs and batches; returns its state after.
SELECT jobctl_depend(%(id)s, %(jobs)s::bigint[], %(batches)s::bigint[]);

-- name: dependencies_of_jobs
-- What some jobs wait (or waited) for.
SELECT job_id, on_job, on_batch, outcome FROM jobctl_dependencies
WHERE job_id = ANY(%(ids)s::bigint[]) ORDER BY job_id, on_batch NULLS FIRST, on_job, on_batch;

-- name: dependents_of_jobs
-- Which jobs wait (or waited) for some jobs.
SELECT on_job, job_id FROM jobctl_dependencies WHERE on_job = ANY(%(ids)s::bigint[]) ORDER BY on_job, job_id;
