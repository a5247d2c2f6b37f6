-- The runtime's named queries for SQLite: processes, claims, completions, dispatching, pruning.
-- Each starts with `-- name: NAME` and a one-line description; parameters are sqlite3 named
-- placeholders, `:now` the current time in epoch seconds. Arrays travel as JSON text and are
-- read with json_each. Multi-statement steps run in one BEGIN IMMEDIATE.

-- name: register_process
-- Register a supervisor, worker, dispatcher or scheduler.
INSERT INTO jobctl_processes (kind, hostname, host_id, pid, supervisor_id, queues, threads, wakeup, metadata,
                              last_heartbeat_at, started_at)
VALUES (:kind, :hostname, :host_id, :pid, :supervisor_id, :queues, :threads, :wakeup, :metadata, :now, :now)
RETURNING id;

-- name: heartbeat
-- Beat for one process (run once per process of a supervisor, in one transaction).
UPDATE jobctl_processes SET last_heartbeat_at = :now, busy = :busy WHERE id = :id RETURNING id;

-- name: release_processes_jobs
-- Return every job these processes hold to ready (not counted as a run).
UPDATE jobctl_jobs SET state = 'ready', claim_token = NULL, claimed_at = NULL
WHERE state = 'claimed' AND process_id IN (SELECT value FROM json_each(:ids));

-- name: delete_processes
-- Forget these processes.
DELETE FROM jobctl_processes WHERE id IN (SELECT value FROM json_each(:ids));

-- name: stale_processes
-- Processes whose heartbeat is older than the threshold (seconds).
SELECT id, hostname, host_id, pid, kind, supervisor_id FROM jobctl_processes WHERE last_heartbeat_at < :now - :threshold;

-- name: host_processes
-- Processes registered from one host: the same hostname, boot and PID namespace (to find whose pid is gone).
SELECT id, hostname, host_id, pid, kind, supervisor_id FROM jobctl_processes WHERE host_id = :host_id;

-- name: set_wakeup
-- How these processes' workers wake now: `listening` (NOTIFY) or `polling`.
UPDATE jobctl_processes SET wakeup = :wakeup WHERE id IN (SELECT value FROM json_each(:ids));

-- name: crash_jobs
-- Jobs that were executing when their process died: count the run and the crash; fail after max_crashes.
UPDATE jobctl_jobs
SET attempts = attempts + 1, crashes = crashes + 1, claim_token = NULL, claimed_at = NULL,
    state = CASE WHEN crashes + 1 >= :max_crashes THEN 'failed' ELSE 'ready' END,
    finished_at = CASE WHEN crashes + 1 >= :max_crashes THEN :now END
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'claimed' AND process_id = :process_id
RETURNING id, attempts, state, queue;

-- name: job_summaries
-- Jobs by id, as the supervisor counts and reports crashed runs.
SELECT id, queue, class, attempts - attempts_base, arguments FROM jobctl_jobs
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: insert_error
-- Keep the error of one run.
INSERT INTO jobctl_errors (job_id, attempt, class, message, traceback, at, process_id)
VALUES (:id, :attempt, :class, :message, :traceback, :now, :process_id);

-- name: count_throughput
-- Add to this minute's finished/failed counters of one process and queue.
INSERT INTO jobctl_throughput (minute, source, queue, finished, failed)
VALUES (:minute, :process_id, :queue, :finished, :failed)
ON CONFLICT (minute, source, queue) DO UPDATE
SET finished = finished + excluded.finished, failed = failed + excluded.failed;

-- name: finish_jobs
-- Mark a batch finished (fenced by the claim token); their ids and queues, to count them. Members of a
-- jobctl batch only when `members` says these are (the interface's rule: see Session.claim).
UPDATE jobctl_jobs SET state = 'finished', finished_at = :now, attempts = attempts + 1, claim_token = NULL
WHERE id IN (SELECT value FROM json_each(:done)) AND claim_token = :token AND state = 'claimed'
  AND (batch_id IS NULL OR :members)
RETURNING id, queue;

-- name: store_result
-- Keep what a job just finished returned.
INSERT INTO jobctl_results (job_id, value) VALUES (:id, :value)
ON CONFLICT (job_id) DO UPDATE SET value = excluded.value;

-- name: claim_any
-- Claim the next batch from every unpaused queue: priority, then age (after the keyset hint).
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = :now, claim_token = :token, process_id = :process_id
WHERE id IN (
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND (priority, id) > (:after_priority, :after_id)
      AND queue NOT IN (SELECT queue FROM jobctl_pauses)
    ORDER BY priority, id LIMIT :limit)
RETURNING id, queue, class, priority, arguments, attempts, attempts_base, timeout_s, batch_id;

-- name: claim_queue
-- Claim the next batch from one queue (unless paused): priority, then age (after the keyset hint).
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = :now, claim_token = :token, process_id = :process_id
WHERE id IN (
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND queue = :queue AND (priority, id) > (:after_priority, :after_id)
      AND NOT EXISTS (SELECT 1 FROM jobctl_pauses WHERE queue = :queue)
    ORDER BY priority, id LIMIT :limit)
RETURNING id, queue, class, priority, arguments, attempts, attempts_base, timeout_s, batch_id;

-- name: claim_prefix
-- Claim the next batch from queues matching a GLOB pattern (unpaused): priority, then age (after the hint).
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = :now, claim_token = :token, process_id = :process_id
WHERE id IN (
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND queue GLOB :pattern AND (priority, id) > (:after_priority, :after_id)
      AND queue NOT IN (SELECT queue FROM jobctl_pauses)
    ORDER BY priority, id LIMIT :limit)
RETURNING id, queue, class, priority, arguments, attempts, attempts_base, timeout_s, batch_id;

-- name: queue_of_job
-- The queue a job is on now (a retry may move it: its run is counted where it ran).
SELECT queue FROM jobctl_jobs WHERE id = :id;

-- name: retry_job
-- A run raised a retryable error: count the run and schedule the next (fenced).
UPDATE jobctl_jobs
SET state = CASE WHEN :delay > 0 THEN 'scheduled' ELSE 'ready' END,
    scheduled_at = :now + :delay, attempts = attempts + 1, claim_token = NULL, claimed_at = NULL,
    queue = COALESCE(:queue, queue), priority = COALESCE(:priority, priority)
WHERE id = :id AND claim_token = :token AND state = 'claimed'
RETURNING id, attempts, state, scheduled_at;

-- name: end_job
-- A run ended for good as failed or discarded (fenced).
UPDATE jobctl_jobs SET state = :state, finished_at = :now, attempts = attempts + 1, claim_token = NULL
WHERE id = :id AND claim_token = :token AND state = 'claimed'
RETURNING id, attempts, state, queue;

-- name: dispatch_due
-- Move due scheduled jobs to ready, oldest first, in one batch.
UPDATE jobctl_jobs SET state = 'ready'
WHERE id IN (SELECT id FROM jobctl_jobs WHERE state = 'scheduled' AND scheduled_at <= :now
             ORDER BY scheduled_at LIMIT :limit);

-- name: prune_finished_ids
-- One batch of finished jobs older than the retention (seconds).
SELECT id FROM jobctl_jobs WHERE state = 'finished' AND finished_at < :now - :age ORDER BY finished_at LIMIT :limit;


-- name: prune_throughput
-- Forget throughput counters older than the given age (seconds).
DELETE FROM jobctl_throughput WHERE minute < :now - :age;

-- ---------------------------------------------------------------------------------------
-- Recurring tasks.

-- name: upsert_recurring_task
-- Record a task as this scheduler loaded it.
INSERT INTO jobctl_recurring_tasks (key, schedule, cron, class, command, arguments, queue, priority, description,
                                    next_run_at, updated_at)
VALUES (:key, :schedule, :cron, :class, :command, :arguments, :queue, :priority, :description, :next_run_at, :now)
ON CONFLICT (key) DO UPDATE SET schedule = excluded.schedule, cron = excluded.cron, class = excluded.class,
    command = excluded.command, arguments = excluded.arguments, queue = excluded.queue,
    priority = excluded.priority, description = excluded.description, next_run_at = excluded.next_run_at,
    updated_at = excluded.updated_at;

-- name: insert_recurring_run
-- Claim one tick of a task for this scheduler (ignored when another already did).
INSERT INTO jobctl_recurring_runs (task_key, run_at, job_id)
VALUES (:key, :run_at, (SELECT COALESCE(max(seq), 0) + 1 FROM sqlite_sequence WHERE name = 'jobctl_jobs'))
ON CONFLICT DO NOTHING;

-- name: insert_tick_job
-- The job of a tick just claimed (its id was reserved by insert_recurring_run, in the same transaction).
INSERT INTO jobctl_jobs (id, queue, class, priority, state, arguments, enqueued_at, scheduled_at)
SELECT job_id, :queue, :class, :priority, 'ready', :arguments, :now, :now
FROM jobctl_recurring_runs WHERE task_key = :key AND run_at = :run_at
RETURNING id;

-- name: set_next_run
-- Show operators when a task runs next.
UPDATE jobctl_recurring_tasks SET next_run_at = :next_run_at, updated_at = :now WHERE key = :key;

-- name: prune_recurring_runs
-- Forget ticks older than the given age (seconds).
DELETE FROM jobctl_recurring_runs WHERE run_at < :now - :age;

-- ---------------------------------------------------------------------------------------
-- Concurrency limits (the rules live in migration 0004's triggers).

-- name: ensure_slots
-- Make sure a concurrency key has `to` slots (extra free ones go when a limit shrinks).
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :to)
INSERT INTO jobctl_slots (key, slot, duration_s) SELECT :key, x, :duration FROM n WHERE true
ON CONFLICT DO NOTHING;
DELETE FROM jobctl_slots WHERE key = :key AND slot > :to AND job_id IS NULL;

-- name: discard_blocked
-- A job that found no free slot, with on_conflict="discard": discarded, the reason kept.
INSERT INTO jobctl_errors (job_id, attempt, class, message, at)
SELECT id, 0, 'jobctl.ConcurrencyLimitReached', :message, :now FROM jobctl_jobs WHERE id = :id AND state = 'blocked';
UPDATE jobctl_jobs SET state = 'discarded', finished_at = :now WHERE id = :id AND state = 'blocked' RETURNING id;

-- name: reclaim_slots
-- Free slots held longer than their duration by a job that is no longer ready or claimed.
UPDATE jobctl_slots SET job_id = NULL, assigned_at = NULL
WHERE job_id IS NOT NULL AND assigned_at < :now - duration_s
  AND NOT EXISTS (SELECT 1 FROM jobctl_jobs AS j WHERE j.id = jobctl_slots.job_id AND j.state IN ('ready', 'claimed'));

-- name: unblock_one
-- Give one free slot to the best blocked job of its key (run until it changes nothing).
UPDATE jobctl_slots
SET job_id = (SELECT j.id FROM jobctl_jobs AS j WHERE j.state = 'blocked' AND j.concurrency_key = jobctl_slots.key
              ORDER BY j.priority, j.id LIMIT 1),
    assigned_at = :now
WHERE rowid = (SELECT s.rowid FROM jobctl_slots AS s WHERE s.job_id IS NULL
               AND EXISTS (SELECT 1 FROM jobctl_jobs AS j WHERE j.state = 'blocked' AND j.concurrency_key = s.key)
               LIMIT 1);

-- name: ready_slot_holders
-- Blocked jobs that were just given a slot become ready.
UPDATE jobctl_jobs SET state = 'ready', scheduled_at = :now
WHERE state = 'blocked' AND id IN (SELECT job_id FROM jobctl_slots WHERE job_id IS NOT NULL);

-- name: set_progress
-- Record a running job's progress (last report wins).
INSERT INTO jobctl_progress (job_id, done, total, message, at)
VALUES (:id, :done, :total, :message, :now)
ON CONFLICT (job_id) DO UPDATE SET done = excluded.done, total = excluded.total, message = excluded.message,
    at = excluded.at;

-- name: release_claims
-- Return a live process's claimed jobs to ready, except those it is executing (after it lost track).
UPDATE jobctl_jobs SET state = 'ready', claim_token = NULL, claimed_at = NULL
WHERE state = 'claimed' AND process_id = :process_id AND id NOT IN (SELECT value FROM json_each(:keep));
