-- Operators' named queries for SQLite (CLI verbs, the monitor, the testing helpers). A query may
-- hold several statements: they run in one transaction, and the last one's rows are the result.

-- name: queue_counts
-- Active and failed jobs per queue and state, with each queue's oldest ready due time.
SELECT queue, state, count(*) AS n, min(scheduled_at) FILTER (WHERE state = 'ready') AS oldest_ready_at
FROM jobctl_jobs
WHERE state IN ('scheduled', 'ready', 'claimed', 'blocked', 'waiting', 'failed')
GROUP BY queue, state;

-- name: metrics_reading
-- For metrics, in one statement: the time; active and failed jobs per queue and state with each
-- queue's oldest ready due time; processes per kind and host, those that beat within the threshold
-- and the age of the least recent heartbeat.
SELECT 'now' AS what, NULL AS a, NULL AS b, 0 AS n, :now AS at, NULL AS age
UNION ALL
SELECT 'jobs', queue, state, count(*), min(scheduled_at) FILTER (WHERE state = 'ready'), NULL
FROM jobctl_jobs
WHERE state IN ('scheduled', 'ready', 'claimed', 'blocked', 'waiting', 'failed')
GROUP BY queue, state
UNION ALL
SELECT 'processes', kind, hostname, sum(last_heartbeat_at >= :now - :threshold), NULL,
       :now - min(last_heartbeat_at)
FROM jobctl_processes
GROUP BY kind, hostname;

-- name: count_in_state
-- Exact count of one state (finished and discarded have partial indexes of their own).
SELECT count(*) AS n FROM jobctl_jobs WHERE state = :state;

-- name: paused_queues
-- Every paused queue.
SELECT queue FROM jobctl_pauses ORDER BY queue;

-- name: throughput
-- Finished and failed runs per minute over the last hour and a bit.
SELECT minute, sum(finished) AS finished, sum(failed) AS failed
FROM jobctl_throughput WHERE minute >= :now - :now % 60 - 61 * 60
GROUP BY minute;

-- name: throughput_totals
-- Runs finished and failed since the counters began (the monitor's rates are deltas of these).
SELECT COALESCE(sum(finished), 0) AS finished, COALESCE(sum(failed), 0) AS failed, :now AS now
FROM jobctl_throughput;

-- name: live_process_count
-- Processes whose heartbeat is recent.
SELECT count(*) AS n FROM jobctl_processes WHERE last_heartbeat_at >= :now - :threshold;

-- name: list_jobs
-- One page of jobs, newest first, optionally filtered; `after` is the last id of the previous page.
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs
WHERE (:state IS NULL OR state = :state) AND (:queue IS NULL OR queue = :queue)
  AND (:class IS NULL OR class = :class) AND (:after IS NULL OR id < :after)
ORDER BY id DESC
LIMIT :limit;

-- name: jobs_by_ids
-- Jobs by id.
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs WHERE id IN (SELECT value FROM json_each(:ids)) ORDER BY id DESC;

-- name: errors_of_jobs
-- Every error of some jobs, oldest first.
SELECT job_id, attempt, class, message, traceback, at, process_id FROM jobctl_errors
WHERE job_id IN (SELECT value FROM json_each(:ids)) ORDER BY job_id, id;

-- name: progress_of_jobs
-- Last reported progress of some jobs.
SELECT job_id, done, total, message, at FROM jobctl_progress WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: results_of_jobs
-- What some finished jobs returned (jobs that returned None have no row).
SELECT job_id, value FROM jobctl_results WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: match_jobs
-- Ids and states of the jobs a bulk verb would touch.
SELECT id, state FROM jobctl_jobs
WHERE state IN (SELECT value FROM json_each(:states)) AND (:queue IS NULL OR queue = :queue)
  AND (:class IS NULL OR class = :class)
  AND (:older_than IS NULL OR COALESCE(finished_at, enqueued_at) < :now - :older_than)
ORDER BY id;

-- name: failed_page
-- A page of failed jobs (oldest first, after an id) as the Failures panel's rows: queue, class,
-- attempts, when it failed and its last error. The monitor's filter runs on them in Python (str.lower).
SELECT j.id, j.queue, j.class, j.attempts, j.finished_at,
       (SELECT e.class FROM jobctl_errors AS e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1) AS error_class,
       (SELECT e.message FROM jobctl_errors AS e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1) AS error_message
FROM jobctl_jobs AS j
WHERE j.state = 'failed' AND j.id > :after
ORDER BY j.id
LIMIT :limit;

-- name: retry_failed
-- Failed jobs back to ready with a fresh retry budget; one whose key another active job holds is left.
UPDATE jobctl_jobs
SET state = 'ready', scheduled_at = :now, finished_at = NULL, claim_token = NULL,
    attempts_base = attempts, crashes = 0
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'failed'
  AND (key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobctl_jobs AS a
      WHERE a.key = jobctl_jobs.key AND a.state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting')))
RETURNING id, queue;

-- name: discard_jobs
-- Failed, ready, scheduled, blocked or waiting jobs to discarded.
UPDATE jobctl_jobs SET state = 'discarded', finished_at = :now, claim_token = NULL
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN ('failed', 'ready', 'scheduled', 'blocked', 'waiting')
RETURNING id;

-- name: delete_jobs
-- Delete jobs with their errors, progress and results.
DELETE FROM jobctl_errors WHERE job_id IN (SELECT value FROM json_each(:ids));
DELETE FROM jobctl_progress WHERE job_id IN (SELECT value FROM json_each(:ids));
DELETE FROM jobctl_results WHERE job_id IN (SELECT value FROM json_each(:ids));
DELETE FROM jobctl_jobs WHERE id IN (SELECT value FROM json_each(:ids)) RETURNING id;

-- name: pause_queue
-- Stop claiming from a queue (it need not have jobs yet).
INSERT INTO jobctl_pauses (queue, paused_at) VALUES (:queue, :now) ON CONFLICT DO NOTHING RETURNING queue;

-- name: resume_queue
-- Claim from a queue again.
DELETE FROM jobctl_pauses WHERE queue = :queue RETURNING queue;

-- name: processes
-- Every registered process.
SELECT id, kind, hostname, pid, supervisor_id, queues, threads, busy, last_heartbeat_at, started_at, wakeup
FROM jobctl_processes ORDER BY id;

-- name: recurring_tasks
-- Recurring tasks as schedulers registered them, with their last run (a tick, or one made by hand).
SELECT t.key, t.schedule, t.cron, t.class, t.command, t.arguments, t.queue, t.priority, t.description,
       t.next_run_at, (SELECT max(run_at) FROM jobctl_recurring_runs AS r WHERE r.task_key = t.key) AS last_run_at,
       (SELECT manual FROM jobctl_recurring_runs AS r WHERE r.task_key = t.key ORDER BY run_at DESC LIMIT 1)
           AS last_run_manual
FROM jobctl_recurring_tasks AS t ORDER BY t.key;

-- name: queues_used
-- Queues with runs counted (finished or failed) within the last `within` seconds.
SELECT DISTINCT queue FROM jobctl_throughput
WHERE minute > :now - :within - 60 AND queue <> ''
ORDER BY queue;

-- name: enqueue_recurring_now
-- Enqueue a registered task's job now, outside its schedule, recorded as a run made by hand.
INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, enqueued_at, scheduled_at)
SELECT queue, class, priority, 'ready', arguments, :now, :now FROM jobctl_recurring_tasks WHERE key = :key;
INSERT INTO jobctl_recurring_runs (task_key, run_at, job_id, manual)
SELECT :key, :now, last_insert_rowid(), 1 WHERE changes() = 1
RETURNING job_id;

-- name: claimed_executions
-- Claimed jobs with the process holding them and their progress, oldest claim first (bounded).
SELECT j.id, j.class, j.queue, j.claimed_at, j.attempts, j.attempts_base, j.process_id,
       p.hostname, p.pid, p.kind, g.done, g.total, g.message AS progress_message, g.at AS progress_at
FROM jobctl_jobs AS j
LEFT JOIN jobctl_processes AS p ON p.id = j.process_id
LEFT JOIN jobctl_progress AS g ON g.job_id = j.id
WHERE j.state = 'claimed' ORDER BY j.claimed_at, j.id LIMIT :limit;

-- name: recurring_task
-- What one recurring task's ticks enqueue.
SELECT key, schedule, cron, class, command, arguments, queue, priority, description, next_run_at
FROM jobctl_recurring_tasks WHERE key = :key;

-- name: make_scheduled_due
-- The testing helpers skip waits: every scheduled job becomes due now.
UPDATE jobctl_jobs SET scheduled_at = :now WHERE state = 'scheduled' RETURNING id;

-- name: waiting_jobs
-- Jobs enqueued and not yet run (scheduled, ready, blocked or waiting), oldest first (the testing
-- helpers' view).
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs WHERE state IN ('scheduled', 'ready', 'blocked', 'waiting') ORDER BY id;
